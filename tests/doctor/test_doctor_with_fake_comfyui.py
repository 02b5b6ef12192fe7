"""Doctor against a ComfyUI that `fluxops comfy start` launched: the comfy engineer's fake ComfyUI, a real
process speaking ComfyUI's HTTP API on 127.0.0.1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fakes.comfyui.install import make_comfyui_dir
from tests.helpers import free_port

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX process handling in the fake")


def test_port_is_ours_and_nodes_are_there(cli, tmp_path: Path):
    comfy = make_comfyui_dir(tmp_path / "ComfyUI")
    env = {
        "FLUXOPS_COMFYUI_DIR": str(comfy),
        "FLUXOPS_PORT": str(free_port()),
        "FAKE_COMFYUI_PID_DIR": str(tmp_path / "pids"),
    }
    started = cli("comfy", "start", "--json", env=env, timeout=90)
    try:
        assert started.returncode == 0, started.stderr
        pid = json.loads(started.stdout)["data"]["server"]["pid"]
        proc = cli("doctor", "comfyui", "--json", env=env)
        checks = {c["id"]: c for c in json.loads(proc.stdout)["data"]["checks"]}
    finally:
        cli("comfy", "stop", "--grace", "2", env=env)
    port = checks["comfyui.port"]
    assert port["status"] == "ok" and port["facts"]["state"] == "ours"
    assert port["facts"]["fluxops_record"]["pid"] == pid and "fluxops reuses it" in port["summary"]
    nodes = checks["comfyui.nodes"]
    assert nodes["status"] == "ok" and nodes["facts"]["missing"] == []
    assert checks["comfyui.install"]["facts"]["python_source"] == "venv"
