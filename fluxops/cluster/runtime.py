"""Reaching Ray: the import guard, the one address rule, the alive nodes, and pinning work to one node.

Everything else in `fluxops/cluster/` asks Ray through this module. Ray Core's API:
https://docs.ray.io/en/latest/ray-core/api/index.html
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from fluxops.errors import FluxopsError

# `ray.init(address="local")` always starts a new Ray for this command; a bare `ray.init()` would join whatever
# cluster this machine last started (https://docs.ray.io/en/latest/ray-core/api/doc/ray.init.html).
LOCAL = "local"


def import_ray() -> ModuleType:
    """Ray, or one line naming the install command (Ray is an optional extra)."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise FluxopsError("cluster.not_installed", f"--cluster needs Ray, which is not installed here ({exc})")\
            from None


def resolve_address(flag: str | None, env: Mapping[str, str]) -> str:
    """--ray-address, else RAY_ADDRESS, else a local Ray started for this command (using all its GPUs)."""
    for value in (flag, env.get("RAY_ADDRESS")):
        if value and value.strip():
            return value.strip()
    return LOCAL


@dataclass(frozen=True)
class Node:
    """One alive Ray node, as the scheduler sees it."""

    node_id: str
    ip: str
    hostname: str
    gpus: int
    cpus: float

    @property
    def label(self) -> str:
        """How progress and tables name a node: its host name, and its id's start when two share one host."""
        return f"{self.hostname}/{self.node_id[:8]}"


@contextmanager
def connected(address: str, *, runtime_env: Mapping[str, Any] | None = None) -> Iterator[ModuleType]:
    """Ray, initialised for this command against `address` (see `resolve_address`), shut down on the way out."""
    ray = import_ray()
    kwargs: dict[str, Any] = {"address": address, "log_to_driver": False, "logging_level": "warning"}
    if runtime_env:
        kwargs["runtime_env"] = dict(runtime_env)
    if address == LOCAL:
        kwargs["include_dashboard"] = False
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise FluxopsError("cluster.unreachable", f"cannot reach Ray at {address}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def alive_nodes(ray: ModuleType) -> list[Node]:
    """The nodes Ray sees alive now, in a stable order (head first as Ray lists it, then by id)."""
    nodes = []
    for entry in ray.nodes():
        if not entry.get("Alive"):
            continue
        resources = entry.get("Resources") or {}
        nodes.append(Node(
            node_id=str(entry["NodeID"]),
            ip=str(entry.get("NodeManagerAddress", "")),
            hostname=str(entry.get("NodeManagerHostname", "") or entry.get("NodeManagerAddress", "")),
            gpus=int(resources.get("GPU", 0)),
            cpus=float(resources.get("CPU", 0)),
        ))
    return nodes


def gpu_nodes(ray: ModuleType) -> list[Node]:
    """The alive nodes with at least one GPU; none is `cluster.no_gpus`."""
    nodes = [node for node in alive_nodes(ray) if node.gpus > 0]
    if not nodes:
        raise FluxopsError("cluster.no_gpus", "no alive node of the Ray cluster has a GPU")
    return nodes


def pinned_to(node_id: str) -> Any:
    """A scheduling strategy that runs a task or actor on that node or not at all (never elsewhere: soft=False)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
