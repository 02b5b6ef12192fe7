"""Shared fixtures: an isolated environment per test and a way to run the real `fluxops` CLI (the helpers
they use are in tests/helpers.py)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import DATA, REPO, kill_leftovers, run_fluxops  # noqa: F401 (DATA, REPO: imported from here)

_SCRUB_PREFIXES = ("FLUXOPS_", "HF_", "HUGGING")
_SCRUB = {"HUGGINGFACE_TOKEN", "CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF"}


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background of a non-interactive shell (as CI may start it) inherits SIGINT as
    *ignored*, and an ignored signal stays ignored across exec: the Ctrl-C tests could not interrupt their
    subprocesses. With a handler installed here, every child starts with SIGINT's default instead."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean environment (in-process and for subprocesses): own HOME, state, config and HF dirs."""
    for key in list(os.environ):
        if key.startswith(_SCRUB_PREFIXES) or key in _SCRUB:
            monkeypatch.delenv(key, raising=False)
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
        "XDG_STATE_HOME": str(tmp_path / "home" / ".local" / "state"),
        "FLUXOPS_STATE_DIR": str(tmp_path / "state"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "COLUMNS": "200",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "home").mkdir(exist_ok=True)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    return env


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(isolated: dict[str, str], tmp_path: Path) -> CliRunner:
    """Run `python -m fluxops ARGS` as a real subprocess, the way a user runs it."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            input: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return run_fluxops(*args, env=env, timeout=timeout, input=input, cwd=cwd or tmp_path / "work")

    return run


@pytest.fixture(autouse=True)
def no_leftover_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every fake ComfyUI records its pid; after the test none may still run (they are killed, and the test
    fails)."""
    pid_dir = tmp_path / "fake-comfyui-pids"
    monkeypatch.setenv("FAKE_COMFYUI_PID_DIR", str(pid_dir))
    yield pid_dir
    leftovers = kill_leftovers(pid_dir)
    if leftovers:
        pytest.fail("fake ComfyUI processes left running (now killed): " + "; ".join(leftovers))
