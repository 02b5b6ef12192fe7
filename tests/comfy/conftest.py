"""Fixtures for the ComfyUI tests: a fake ComfyUI folder, free ports, a directly started fake server (the
check that no test leaves a fake ComfyUI behind is autouse in tests/conftest.py, for every test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.comfyui.install import make_comfyui_dir
from tests.fakes.comfyui.release import RECORDED, RELEASES  # noqa: F401  (RELEASES: for parametrize)
from tests.helpers import free_port, kill_leftovers, stop, wait_for_port  # noqa: F401  (used by tests/comfy tests)
from tests.helpers import live_process as _alive  # noqa: F401  (used by tests/comfy tests)


@pytest.fixture
def comfyui_dir(tmp_path: Path) -> Path:
    return make_comfyui_dir(tmp_path / "ComfyUI")


@pytest.fixture
def release(request: pytest.FixtureRequest) -> str:
    """The ComfyUI release the fake behaves like (tests/fakes/comfyui/release.py): the recorded 0.3.64 unless a
    test runs against both with `@pytest.mark.parametrize("release", RELEASES, indirect=True)`."""
    return str(getattr(request, "param", RECORDED))


@pytest.fixture
def start_fake(comfyui_dir: Path, release: str) -> Iterator[Callable[..., tuple[subprocess.Popen, int]]]:
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
            env={**os.environ, "FAKE_COMFYUI_RELEASE": release, **(env or {})},
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
        stop(proc, signal.SIGTERM)


@pytest.fixture
def comfy(cli, comfyui_dir: Path, monkeypatch: pytest.MonkeyPatch, isolated: dict[str, str], release: str):
    """`fluxops comfy ...` as a real subprocess, with the fake ComfyUI dir and a free port configured through
    the environment. Whatever a test started is stopped at the end (the leftover check runs after this)."""
    port = free_port()
    monkeypatch.setenv("FLUXOPS_COMFYUI_DIR", str(comfyui_dir))
    monkeypatch.setenv("FLUXOPS_PORT", str(port))
    monkeypatch.setenv("FAKE_COMFYUI_RELEASE", release)  # fluxops passes its environment on to ComfyUI

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 90):
        return cli("comfy", *args, env=env, timeout=timeout)

    run.port = port  # type: ignore[attr-defined]
    run.state_file = Path(isolated["FLUXOPS_STATE_DIR"]) / "comfy" / "server.json"  # type: ignore[attr-defined]
    yield run
    run("stop", "--grace", "2")
