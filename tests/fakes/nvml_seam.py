"""How tests put the fake NVML (tests/fakes/nvml/pynvml.py) in place of nvidia-ml-py: the one GPU seam.

In-process: the fake module goes into sys.modules["pynvml"]. For `fluxops` subprocesses: its folder goes first
on PYTHONPATH. Either way it reads the scenario JSON (tests/data/nvml/<name>.json) named by FAKE_NVML_SCENARIO.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
NVML_FAKE_DIR = TESTS / "fakes" / "nvml"
NVML_SCENARIOS = TESTS / "data" / "nvml"


def scenario_path(name: str) -> str:
    return str(NVML_SCENARIOS / f"{name}.json")


def install_fake_nvml(monkeypatch: pytest.MonkeyPatch, name: str | None = None) -> None:
    spec = importlib.util.spec_from_file_location("pynvml", NVML_FAKE_DIR / "pynvml.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    spec.loader.exec_module(module)
    if name is not None:
        monkeypatch.setenv("FAKE_NVML_SCENARIO", scenario_path(name))


def nvml_env(name: str) -> dict[str, str]:
    """Environment for a `fluxops` subprocess that sees the fake NVML with the named scenario."""
    return {
        "PYTHONPATH": os.pathsep.join([str(NVML_FAKE_DIR), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
        "FAKE_NVML_SCENARIO": scenario_path(name),
    }
