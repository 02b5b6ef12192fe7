"""A real two-node Ray cluster on 127.0.0.1 for the cluster tests (skipped where Ray, the `cluster` extra, is not
installed). Each node declares GPUs it does not have; Ray sets CUDA_VISIBLE_DEVICES per actor all the same:
https://docs.ray.io/en/latest/ray-core/scheduling/accelerators.html"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import REPO

# On a machine with one routable address, Ray's driver otherwise looks for the head at that address instead of the
# 127.0.0.1 the test nodes listen on; set before Ray is imported (it reads its constants at import).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

# Lost nodes are noticed within about 2 s instead of Ray's default 30 s (health checks every 500 ms, 4 misses).
FAST_HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 4,
               "health_check_initial_delay_ms": 0}


@dataclass
class RayCluster:
    cluster: Any
    address: str
    head: Any
    workers: list[Any]

    def add_node(self, gpus: int = 2, **node_args: Any) -> Any:
        node = self.cluster.add_node(num_gpus=gpus, num_cpus=2, node_ip_address="127.0.0.1", **node_args)
        self.workers.append(node)
        self.cluster.wait_for_nodes()
        return node

    def remove_node(self, node: Any) -> None:
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)


def start_cluster(gpus_per_node: tuple[int, ...] = (2, 2), env: dict[str, str] | None = None) -> RayCluster:
    """A head plus one node per further entry of `gpus_per_node`, all on 127.0.0.1, workers able to import this
    checkout's fluxops (they inherit this process's environment, with the checkout on PYTHONPATH)."""
    os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    for key, value in (env or {}).items():
        os.environ[key] = value
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_gpus": gpus_per_node[0], "num_cpus": 2, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        "_system_config": FAST_HEALTH})
    rc = RayCluster(cluster=cluster, address=cluster.address, head=cluster.head_node, workers=[])
    for gpus in gpus_per_node[1:]:
        rc.add_node(gpus)
    return rc


@pytest.fixture
def ray_cluster() -> Iterator[RayCluster]:
    """Two nodes of two declared GPUs each; shut down (every Ray process gone) after the test."""
    saved = dict(os.environ)
    rc = start_cluster()
    try:
        yield rc
    finally:
        rc.cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)
