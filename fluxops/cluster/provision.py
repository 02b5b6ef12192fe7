"""`fluxops setup --cluster`: the same provisioning (`fluxops.setup.run`) on every GPU node, into its own models dir.

Each node resolves its own Settings (`pernode.node_settings`) and runs `run_setup` under setup's own lock on its
models dir, so nodes that share one folder (a shared file system) download it once: the second waits for the
lock, then finds the files verified. The Hugging Face token is the driver's, resolved once on the driver and sent
to the nodes' tasks as an argument (it travels in Ray's object store, never in a log line or a result).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from fluxops.cluster.pernode import NodeCall, NodeRow, Progress, node_settings, on_each_node
from fluxops.cluster.runtime import gpu_nodes
from fluxops.hub.tokens import ResolvedToken
from fluxops.setup.run import FileOutcome, SetupEvents, SetupOptions
from fluxops.units import human_bytes

PROGRESS_EVERY = 2.0  # seconds between a node's "n% of file" lines


class NodeEvents(SetupEvents):
    """Setup's events on a node, sent back to the driver as short lines (byte progress at most every 2 s)."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._files: dict[str, list[float]] = {}  # id -> [total, done, last said]

    def note(self, text: str) -> None:
        self._progress.say(text)

    def started(self, file_id: str, total: int, done: int) -> None:
        self._files[file_id] = [total, done, time.monotonic()]
        resume = f", resuming at {human_bytes(done)}" if done else ""
        self._progress.say(f"{file_id}: downloading {human_bytes(total - done)}{resume}")

    def advance(self, file_id: str, n: int) -> None:
        state = self._files.get(file_id)
        if state is None:
            return
        state[1] += n
        if time.monotonic() - state[2] >= PROGRESS_EVERY:
            state[2] = time.monotonic()
            self._progress.say(f"{file_id}: {state[1] / max(state[0], 1):.0%} of {human_bytes(int(state[0]))}")

    def finished(self, outcome: FileOutcome) -> None:
        if outcome.action == "placed":
            self._progress.say(f"{outcome.id}: placed {outcome.dest} ({human_bytes(outcome.fetched)} fetched)")
        elif outcome.error is not None:
            self._progress.say(f"{outcome.id}: failed: {outcome.error.message}")


def setup_on_node(progress: Progress, call: NodeCall, token: ResolvedToken, options: SetupOptions) -> dict[str, Any]:
    """Run ON a node: its Settings, its manifest, setup into its models dir; the report as plain data."""
    from fluxops.models.manifest import load_manifest
    from fluxops.setup.run import run_setup

    settings = node_settings(call)
    manifest = load_manifest(settings.manifest)
    progress.say(f"models dir {settings.require_models_dir()}")
    report = run_setup(settings, manifest, token, options, NodeEvents(progress))
    return report.to_dict()


def setup_cluster(ray: ModuleType, call: NodeCall, token: ResolvedToken, options: SetupOptions,
                  on_progress: Callable[[str, str], None]) -> list[NodeRow]:
    """One row per GPU node: its setup report, or why it has none."""
    return on_each_node(ray, gpu_nodes(ray), setup_on_node, call, token, options, on_progress=on_progress)
