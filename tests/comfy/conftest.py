"""Fixtures for the ComfyUI tests: a fake ComfyUI folder, free ports, a directly started fake server (the
check that no test leaves a fake ComfyUI behind is autouse in tests/conftest.py, for every test)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import _alive, kill_leftovers  # noqa: F401  (used by tests/comfy tests)
from tests.fakes.comfyui.install import make_comfyui_dir

START_TIMEOUT = 30.0  # seconds: an upper bound, not a timing expectation


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def comfyui_dir(tmp_path: Path) -> Path:
    return make_comfyui_dir(tmp_path / "ComfyUI")


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"fake ComfyUI exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@pytest.fixture
def start_fake(comfyui_dir: Path) -> Iterator[Callable[..., tuple[subprocess.Popen, int]]]:
    """Start the fake ComfyUI directly (not through fluxops): returns (process, port). Stopped at the end."""
    procs: list[subprocess.Popen] = []

    def start(
        *args: str, port: int | None = None, env: dict[str, str] | None = None, wait: bool = True
    ) -> tuple[subprocess.Popen, int]:
        port = port or free_port()
        cmd = [
            sys.executable,
            str(comfyui_dir / "main.py"),
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ]
        proc = subprocess.Popen(
            cmd,
            cwd=comfyui_dir,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        if wait:
            wait_for_port(port, proc)
        return proc, port

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
def comfy(cli, comfyui_dir: Path, monkeypatch: pytest.MonkeyPatch, isolated: dict[str, str]):
    """`fluxops comfy ...` as a real subprocess, with the fake ComfyUI dir and a free port configured through
    the environment. Whatever a test started is stopped at the end (the leftover check runs after this)."""
    port = free_port()
    monkeypatch.setenv("FLUXOPS_COMFYUI_DIR", str(comfyui_dir))
    monkeypatch.setenv("FLUXOPS_PORT", str(port))

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 90):
        return cli("comfy", *args, env=env, timeout=timeout)

    run.port = port  # type: ignore[attr-defined]
    run.state_file = Path(isolated["FLUXOPS_STATE_DIR"]) / "comfy" / "server.json"  # type: ignore[attr-defined]
    yield run
    run("stop", "--grace", "2")
