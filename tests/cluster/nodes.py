"""A Ray cluster whose nodes each have their own fluxops settings, for `setup --cluster` and `doctor --cluster`.

The head inherits this process's environment; every further node gets its own overrides through Ray's node
parameter `env_vars` (the raylet's environment, inherited by the workers it starts)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.cluster.conftest import RayCluster, start_cluster


@contextmanager
def cluster_of(head_env: Mapping[str, str], *node_envs: Mapping[str, str], gpus: int = 2) -> Iterator[RayCluster]:
    """A head with `head_env`, plus one node per entry of `node_envs` (each over the head's), `gpus` GPUs each."""
    saved = dict(os.environ)
    rc = start_cluster((gpus,), env=dict(head_env))
    try:
        for env in node_envs:
            rc.add_node(gpus, env_vars=dict(env))
        yield rc
    finally:
        rc.cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def processes_of(tmp_path: Path) -> list[str]:
    """Processes still running with this test's state dir in their environment (Ray workers it started)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if str(proc.environ().get("FLUXOPS_STATE_DIR", "")).startswith(str(tmp_path)):
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:120]}")
        except psutil.Error:
            continue
    return found
