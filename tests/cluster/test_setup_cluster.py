"""`fluxops setup --cluster` through the real CLI against a real three-node Ray cluster and the fake Hub: two nodes
share one models dir (downloaded once, under setup's own lock), the third has its own."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.cluster.nodes import cluster_of, processes_of
from tests.fakes.nvml_seam import nvml_env
from tests.helpers import run_fluxops, spawn_fluxops, stopping, wait_until
from tests.setup.conftest import BFL, GOOD_TOKEN, Scaled, hub, scaled  # noqa: F401 (fixtures)


def test_every_node_provisioned_shared_dir_downloaded_once_failures_and_ctrl_c(scaled: Scaled, tmp_path: Path) -> None:  # noqa: F811
    own = tmp_path / "models-own"
    scaled.hub.licences.add((GOOD_TOKEN, BFL))
    base = {**scaled.env(), **nvml_env("clean_3090")}
    with cluster_of(base, {}, {"FLUXOPS_MODELS_DIR": str(own), "FLUXOPS_STATE_DIR": str(tmp_path / "state-own")})\
            as rc:
        # the token is the driver's (no node has one in its environment): the gated source is used everywhere
        proc = run_fluxops("setup", "--cluster", "--ray-address", rc.address, "--json", env={"HF_TOKEN": GOOD_TOKEN},
                           timeout=120)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        nodes = doc["data"]["nodes"]
        assert doc["ok"] is True and len(nodes) == 3
        assert {n["result"]["models_dir"] for n in nodes} == {str(scaled.models), str(own)}
        for node in nodes:
            assert node["ok"] and node["error"] is None
            assert {f["action"] for f in node["result"]["files"]} <= {"placed", "present"}
        # the shared folder once, the node's own folder once: nothing fetched twice
        assert scaled.hub.served.bytes == 2 * scaled.total
        for root in (scaled.models, own):
            for spec_dest in ("text_encoders/clip_l.safetensors", "vae/ae.safetensors",
                              "loras/FLUX.1-Turbo-Alpha.safetensors"):
                assert (root / spec_dest).is_file()
        vae_sources = {f["source"] for n in nodes for f in n["result"]["files"] if f["id"] == "vae"}
        assert vae_sources == {BFL, None}  # downloaded from the gated repo, or found present under the lock
        assert GOOD_TOKEN not in proc.stdout + proc.stderr
        assert "placed" in proc.stderr  # per-node progress lines on stderr

        failed = run_fluxops("setup", "--cluster", "--ray-address", rc.address, "--manifest", "gone.toml",
                             timeout=120)
        assert failed.returncode == 1, failed.stderr
        assert "0 of 3 node(s) verified" in failed.stdout and "gone.toml" in failed.stdout
        assert "Traceback" not in failed.stdout + failed.stderr

        # Ctrl-C: every node's setup stops (exit 130) and what arrived stays for the resume
        scaled.hub.faults.rate = 200_000  # bytes/s per connection: the download lasts long enough to interrupt
        fresh = tmp_path / "models-fresh"
        before = scaled.hub.served.bytes
        with stopping(spawn_fluxops("setup", "--cluster", "--ray-address", rc.address, "--models-dir", str(fresh))) \
                as proc:
            wait_until(lambda: scaled.hub.served.bytes > before, timeout=60, what="the download to start")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        wait_until(scaled.hub.quiet, timeout=30, what="the nodes' downloads to stop")
        assert any((fresh / ".fluxops-partial").iterdir())
    # Ray ends a finished driver's actors (the progress queue among them) a moment after it exits.
    wait_until(lambda: processes_of(tmp_path) == [], timeout=30, what="every Ray worker of the command gone")

