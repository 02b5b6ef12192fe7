"""Run one function on every node of the Ray cluster, pinned to it, and gather one row per node.

`setup --cluster` and `doctor --cluster` use it. Each node's function runs as a Ray task with hard node affinity
(`runtime.pinned_to`), resolves that node's own Settings there (its config file, its environment, its models dir:
`node_settings`) from the command-line flags the driver sends, and returns plain data. A node whose task fails,
or which is lost while it runs, is a failed row, never a crash of the command. Progress comes back through a Ray
queue (an actor on the driver's node): https://docs.ray.io/en/latest/ray-core/api/doc/ray.util.queue.Queue.html
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from fluxops.cluster.runtime import Node, pinned_to
from fluxops.errors import FluxopsError
from fluxops.settings import Settings, load_settings

POLL_SECONDS = 0.25  # how often the driver drains the progress queue while it waits on the nodes


@dataclass(frozen=True)
class NodeCall:
    """What the driver sends every node: the command-line flags only (None = not given) and `--config`."""

    flags: Mapping[str, Any]
    config: str | None = None


@dataclass
class NodeRow:
    """One node's outcome: the data its function returned, or why it has none (its error, or the node lost)."""

    node: Node
    data: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # {"code", "message", "hint"}

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.data is not None and self.data.get("ok", True))

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node.label, "node_id": self.node.node_id, "ip": self.node.ip,
                "hostname": self.node.hostname, "gpus": self.node.gpus, "ok": self.ok, "error": self.error,
                "result": self.data}


def absolute_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Path flags made absolute against the driver's working directory: a node's task runs in a folder of Ray's,
    so a relative --models-dir would mean nothing there. The same path then names each node's own folder."""
    return {name: (Path(value).expanduser().absolute() if isinstance(value, Path) else value)
            for name, value in flags.items()}


def _discover(cwd: Path, env: Mapping[str, str]) -> tuple[Path, str] | None:
    from fluxops.comfy.discover import discover

    found = discover(cwd, env, sys.platform)
    return (found.path, found.where) if found is not None else None


def node_settings(call: NodeCall) -> Settings:
    """This node's Settings: the driver's flags over this node's environment and config file (run ON the node)."""
    config = Path(call.config) if call.config else None
    return load_settings(dict(call.flags), env=dict(os.environ), config=config, discover=_discover)


class Progress:
    """The node side of the progress queue: one short line at a time, tagged with the node's label."""

    def __init__(self, queue: Any, label: str):
        self._queue = queue
        self._label = label

    def say(self, text: str) -> None:
        # progress is best effort: a full or gone queue must not fail the node's work
        with contextlib.suppress(Exception):
            self._queue.put_nowait((self._label, text))


def error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, FluxopsError):
        return exc.to_dict()
    return {"code": None, "message": f"{exc.__class__.__name__}: {exc}", "hint": None}


def _lost(ray: ModuleType, exc: BaseException) -> dict[str, Any]:
    """A task that did not return: the node died, its worker crashed, or the function raised."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and cause is not None:
        return error_dict(cause)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return {"code": None, "message": f"the node's task was lost ({exc.__class__.__name__}): {first}",
            "hint": "check the node (ray status) and run the command again"}


def _queue_on_driver_node(ray: ModuleType) -> Any:
    """The progress queue, next to the driver where it has a node (a Ray Client driver has none: anywhere)."""
    from ray.util.queue import Queue

    try:
        strategy: Any = pinned_to(ray.get_runtime_context().get_node_id())
    except Exception:  # Ray Client (ray://): no node of its own
        strategy = "DEFAULT"
    return Queue(actor_options={"num_cpus": 0, "scheduling_strategy": strategy})


def _drain(queue: Any, on_progress: Callable[[str, str], None]) -> None:
    while True:
        try:
            label, text = queue.get_nowait()
        except Exception:  # ray.util.queue.Empty, or the queue's actor gone: nothing more to show
            return
        on_progress(label, text)


def on_each_node(ray: ModuleType, nodes: Sequence[Node], function: Callable[..., dict[str, Any]],
                 *args: Any, on_progress: Callable[[str, str], None] | None = None) -> list[NodeRow]:
    """`function(progress, *args)` on every node (pinned, never retried elsewhere), one row each, in node order.

    Ctrl-C cancels every node's task (Ray raises KeyboardInterrupt in it) and is raised again here."""
    queue = _queue_on_driver_node(ray)
    task = ray.remote(num_cpus=0, max_retries=0)(_guarded)
    refs = {task.options(scheduling_strategy=pinned_to(node.node_id)).remote(
        function, Progress(queue, node.label), *args): node for node in nodes}
    rows = {node.node_id: NodeRow(node) for node in nodes}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=POLL_SECONDS)
            if on_progress is not None:
                _drain(queue, on_progress)
            for ref in done:
                _collect(ray, ref, rows[refs[ref].node_id])
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if on_progress is not None:
            _drain(queue, on_progress)
        queue.shutdown()
    return [rows[node.node_id] for node in nodes]


def _guarded(function: Callable[..., dict[str, Any]], progress: Progress, *args: Any) -> dict[str, Any]:
    """The task itself, on the node: a FluxopsError becomes the row's error here, because it does not survive
    Ray's pickling back to the driver (its constructor takes the registered code first)."""
    try:
        return {"data": function(progress, *args)}
    except FluxopsError as exc:
        return {"error": exc.to_dict()}


def _collect(ray: ModuleType, ref: Any, row: NodeRow) -> None:
    try:
        answer = ray.get(ref)
    except ray.exceptions.RayError as exc:
        row.error = _lost(ray, exc)
        return
    row.data, row.error = answer.get("data"), answer.get("error")
