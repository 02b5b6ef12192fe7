"""Doctor test fixtures: the fake NVML seam, fake ComfyUI interpreters and settings for in-process runs."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fluxops.settings import Settings, load_settings

TESTS = Path(__file__).resolve().parents[1]
NVML_FAKE_DIR = TESTS / "fakes" / "nvml"
NVML_SCENARIOS = TESTS / "data" / "doctor" / "nvml"
DATA = TESTS / "data" / "doctor"


def scenario_path(name: str) -> str:
    return str(NVML_SCENARIOS / f"{name}.json")


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """In-process: put the fake pynvml in sys.modules and point it at a scenario."""
    spec = importlib.util.spec_from_file_location("pynvml", NVML_FAKE_DIR / "pynvml.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    spec.loader.exec_module(module)

    def use(name: str) -> None:
        monkeypatch.setenv("FAKE_NVML_SCENARIO", scenario_path(name))

    return use


def nvml_env(name: str) -> dict[str, str]:
    """For `fluxops` subprocesses: the fake pynvml first on PYTHONPATH, reading the named scenario."""
    return {
        "PYTHONPATH": os.pathsep.join([str(NVML_FAKE_DIR), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
        "FAKE_NVML_SCENARIO": scenario_path(name),
    }


@pytest.fixture
def make_settings(isolated: dict[str, str], tmp_path: Path) -> Callable[..., Settings]:
    def build(**flags: object) -> Settings:
        flags.setdefault("port", free_port())
        return load_settings(flags, env=dict(os.environ))

    return build


def free_port() -> int:
    """A port nothing listens on (bound and released; tests only connect to it)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
