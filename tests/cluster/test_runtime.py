"""fluxops.cluster.runtime against a real two-node Ray cluster: the address rule, alive nodes, pinning."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fluxops.cluster import runtime
from fluxops.errors import FluxopsError
from tests.cluster.conftest import RayCluster
from tests.helpers import REPO


def test_address_rule_flag_then_env_then_local() -> None:
    assert runtime.resolve_address("10.0.0.1:6379", {"RAY_ADDRESS": "x:1"}) == "10.0.0.1:6379"
    assert runtime.resolve_address(None, {"RAY_ADDRESS": " ray://h:10001 "}) == "ray://h:10001"
    assert runtime.resolve_address("  ", {}) == runtime.LOCAL


def test_nodes_and_pinning(ray_cluster: RayCluster) -> None:
    with runtime.connected(ray_cluster.address) as ray:
        nodes = runtime.gpu_nodes(ray)
        assert len(nodes) == 2 and all(node.gpus == 2 and node.ip == "127.0.0.1" for node in nodes)

        @ray.remote(num_cpus=0)
        def where() -> str:
            return str(ray.get_runtime_context().get_node_id())

        for node in nodes:
            placed = {ray.get(where.options(scheduling_strategy=runtime.pinned_to(node.node_id)).remote())
                      for _ in range(3)}
            assert placed == {node.node_id}


def test_a_cluster_without_gpus_is_one_error(ray_cluster: RayCluster) -> None:
    ray_cluster.cluster.shutdown()
    from tests.cluster.conftest import start_cluster

    rc = start_cluster((0,))
    try:
        with runtime.connected(rc.address) as ray, pytest.raises(FluxopsError) as err:
            runtime.gpu_nodes(ray)
        assert err.value.code == "cluster.no_gpus"
    finally:
        rc.cluster.shutdown()


def test_without_ray_the_import_guard_names_the_extra() -> None:
    code = ("import sys; sys.modules['ray'] = None\n"
            "from fluxops.cluster.runtime import import_ray\n"
            "from fluxops.errors import FluxopsError\n"
            "try:\n    import_ray()\nexcept FluxopsError as e:\n    print(e.code, e.hint)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == 'cluster.not_installed pip install "fluxops[cluster]"'
