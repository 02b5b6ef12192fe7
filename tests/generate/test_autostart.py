"""Auto-start: with no server answering and a ComfyUI dir known, generate starts one through `fluxops comfy`,
leaves it running, and `--stop-after` stops it again."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.network


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_starts_comfyui_and_leaves_it_running(comfy: Any, cli: Any, tmp_path: Path) -> None:
    assert not _listening(comfy.port)
    result = cli("generate", "--seed", "1", "--output", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    assert "starting one from" in result.stderr and "started stays running" in result.stderr
    assert json.loads(result.stdout)["data"]["images"][0]["path"].endswith("production_photo_1.png")
    assert comfy.state_file.is_file() and _listening(comfy.port)
    again = cli("generate", "--seed", "2", "--output", str(tmp_path / "out"))  # reuses it
    assert again.returncode == 0 and "starting one" not in again.stderr
    status = comfy("status", "--json")
    assert json.loads(status.stdout)["data"]["running"] is True


def test_stop_after_stops_the_server_it_started(comfy: Any, cli: Any, tmp_path: Path) -> None:
    result = cli("generate", "--output", str(tmp_path / "out"), "--stop-after")
    assert result.returncode == 0, result.stderr
    assert "stopped the ComfyUI this command started" in result.stderr
    assert "stays running" not in result.stderr
    assert not comfy.state_file.exists() and not _listening(comfy.port)


def test_no_server_and_no_comfyui_dir(cli: Any, tmp_path: Path) -> None:
    result = cli("generate", "--port", str(free_port()), "--output", str(tmp_path / "out"), "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "comfy.unreachable" and "--comfyui-dir" in error["hint"]
