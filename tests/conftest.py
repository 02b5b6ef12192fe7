"""Shared fixtures: an isolated environment per test and a way to run the real `fluxops` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

_SCRUB_PREFIXES = ("FLUXOPS_", "HF_", "HUGGING")
_SCRUB = {"HUGGINGFACE_TOKEN", "CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF"}


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
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "fluxops", *args], capture_output=True, text=True,
                              env=full_env, timeout=timeout, input=input, cwd=cwd or tmp_path / "work")

    return run
