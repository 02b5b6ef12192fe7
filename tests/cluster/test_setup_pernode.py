"""fluxops.cluster.pernode against a real two-node Ray cluster: one row per node, pinned; a node whose function
fails, whose worker dies, or which is lost mid-run is a failed row and never a crash of the command."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from fluxops.cluster import runtime
from fluxops.cluster.pernode import NodeCall, NodeRow, Progress, node_settings, on_each_node
from fluxops.errors import FluxopsError
from tests.cluster.conftest import RayCluster
from tests.helpers import wait_until


def _here() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


def where_and_settings(progress: Progress, call: NodeCall) -> dict[str, Any]:
    progress.say("hello")
    return {"node_id": _here(), "models_dir": str(node_settings(call).models_dir)}


def fails_on(progress: Progress, victim: str, how: str) -> dict[str, Any]:
    if _here() == victim:
        if how == "error":
            raise FluxopsError("cluster.no_gpus", "planted failure")
        if how == "crash":
            os._exit(1)
        progress.say("waiting")
        time.sleep(60)  # until its node is removed
    return {"ok": True}


def _split(rows: list[NodeRow], victim: str) -> tuple[NodeRow, NodeRow]:
    """(the head's row, the victim's row)."""
    assert len(rows) == 2
    return (rows[1], rows[0]) if rows[0].node.node_id == victim else (rows[0], rows[1])


def test_rows_pinned_settings_resolved_on_the_node_and_failures_are_rows(ray_cluster: RayCluster,
                                                                         tmp_path: Any) -> None:
    said: list[tuple[str, str]] = []
    with runtime.connected(ray_cluster.address) as ray:
        nodes = runtime.gpu_nodes(ray)
        call = NodeCall({"models_dir": tmp_path / "m"})
        rows = on_each_node(ray, nodes, where_and_settings, call, on_progress=lambda n, t: said.append((n, t)))
        assert [row.data["node_id"] for row in rows if row.data] == [node.node_id for node in nodes]
        assert {row.data["models_dir"] for row in rows if row.data} == {str(tmp_path / "m")}
        assert sorted(said) == sorted((node.label, "hello") for node in nodes)

        victim = ray_cluster.workers[0].node_id
        for how, message in (("error", "planted failure"), ("crash", "the node's task was lost")):
            good, bad = _split(on_each_node(ray, nodes, fails_on, victim, how), victim)
            assert good.ok and good.error is None
            assert not bad.ok and bad.error is not None and message in bad.error["message"], how

        found: dict[str, list[NodeRow]] = {}
        waiting = threading.Event()

        def run() -> None:
            found["rows"] = on_each_node(ray, nodes, fails_on, victim, "lost",
                                         on_progress=lambda n, t: waiting.set() if t == "waiting" else None)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        wait_until(waiting.is_set, timeout=30, what="the node's task to start")
        ray_cluster.remove_node(ray_cluster.workers[0])
        thread.join(timeout=60)
        assert not thread.is_alive()
        good, lost = _split(found["rows"], victim)
        assert good.ok and not lost.ok and lost.error is not None and "lost" in lost.error["message"]
        assert lost.to_dict()["result"] is None and lost.to_dict()["node_id"] == victim
