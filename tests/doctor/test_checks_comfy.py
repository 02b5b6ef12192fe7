"""comfyui.install, comfyui.port and comfyui.nodes against real sockets and a local HTTP stand-in."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from fluxops.doctor import Status
from tests.doctor.conftest import DATA
from tests.fakes.http_stub import StubServer, comfy_routes
from tests.helpers import run_checks, write_server_record

SYSTEM_STATS = json.loads((DATA / "system_stats.json").read_text(encoding="utf-8"))
OBJECT_INFO = json.loads((DATA / "object_info_nodes.json").read_text(encoding="utf-8"))


def _record(settings, pid: int, port: int, create_time: float | None = None) -> None:
    """The record of a ComfyUI fluxops started, answering with the recorded server's command line."""
    write_server_record(settings, pid, port, create_time=create_time,
                        command=["python", *SYSTEM_STATS["system"]["argv"]])


def test_free_port(make_settings):
    got = run_checks(make_settings(), "comfyui.port", "comfyui.nodes")
    assert got["comfyui.port"].status is Status.OK and "is free" in got["comfyui.port"].summary
    assert got["comfyui.nodes"].status is Status.SKIP


def test_port_held_by_another_program(make_settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        port_check = run_checks(make_settings(port=port), "comfyui.port")["comfyui.port"]
    assert port_check.status is Status.FAIL
    assert port_check.facts["holder"]["pid"] == os.getpid()
    assert f"pid {os.getpid()}" in port_check.summary
    assert f"kill {os.getpid()}" in port_check.fix and "--port" in port_check.fix


def test_comfyui_fluxops_started_is_reusable_and_has_the_nodes(make_settings):
    with StubServer(comfy_routes(SYSTEM_STATS, OBJECT_INFO)) as server:
        settings = make_settings(port=server.port)
        _record(settings, os.getpid(), server.port)
        got = run_checks(settings, "comfyui.port", "comfyui.nodes")
    assert got["comfyui.port"].status is Status.OK and "fluxops reuses it" in got["comfyui.port"].summary
    nodes = got["comfyui.nodes"]
    assert nodes.status is Status.OK and nodes.facts["missing"] == []
    assert "KSampler" in nodes.facts["required"] and nodes.facts["comfyui_version"] == "0.3.64"


def test_a_missing_node_class_fails(make_settings):
    info = {k: v for k, v in OBJECT_INFO.items() if k not in ("KSampler", "LoraLoader")}
    with StubServer(comfy_routes(SYSTEM_STATS, info)) as server:
        nodes = run_checks(make_settings(port=server.port), "comfyui.nodes")["comfyui.nodes"]
    assert nodes.status is Status.FAIL and nodes.facts["missing"] == ["KSampler", "LoraLoader"]
    assert "KSampler, LoraLoader" in nodes.summary and nodes.fix


def test_a_comfyui_fluxops_did_not_start(make_settings):
    with StubServer(comfy_routes(SYSTEM_STATS, OBJECT_INFO)) as server:
        port_check = run_checks(make_settings(port=server.port), "comfyui.port")["comfyui.port"]
    assert port_check.status is Status.WARN and "did not start" in port_check.summary


def test_a_stale_record_is_not_trusted(make_settings):
    with StubServer(comfy_routes(SYSTEM_STATS, OBJECT_INFO)) as server:
        settings = make_settings(port=server.port)
        _record(settings, os.getpid(), server.port, create_time=12345.0)  # same pid, another process's start
        port_check = run_checks(settings, "comfyui.port")["comfyui.port"]
    assert port_check.status is Status.WARN and port_check.facts["stale_record"] is True


def _comfy_dir(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "main.py").write_text("print('ComfyUI')\n", encoding="utf-8")
    (root / "comfyui_version.py").write_text('__version__ = "0.3.64"\n', encoding="utf-8")
    return root


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_install_version_commit_and_local_changes(make_settings, tmp_path):
    root = _comfy_dir(tmp_path / "ComfyUI")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    (root / "main.py").write_text("print('patched')\n", encoding="utf-8")
    install = run_checks(make_settings(comfyui_dir=root), "comfyui.install")["comfyui.install"]
    assert install.facts["version"] == "0.3.64" and len(install.facts["git_commit"]) == 12
    assert install.facts["local_changes"] == ["main.py"]
    assert install.status is Status.WARN and "no Python" in install.summary  # no venv beside it


def test_install_not_a_comfyui_folder(make_settings, tmp_path):
    (tmp_path / "empty").mkdir()
    install = run_checks(make_settings(comfyui_dir=tmp_path / "empty"), "comfyui.install")["comfyui.install"]
    assert install.status is Status.FAIL and "has no main.py" in install.summary
