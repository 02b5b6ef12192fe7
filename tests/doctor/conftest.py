"""Doctor test fixtures: the fake NVML seam, fake ComfyUI interpreters and settings for in-process runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fluxops.settings import Settings, load_settings
from tests.fakes.nvml_seam import install_fake_nvml, nvml_env, scenario_path  # noqa: F401 (re-exported)
from tests.helpers import free_port

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data" / "doctor"


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """In-process: put the fake pynvml in sys.modules and point it at a scenario."""
    install_fake_nvml(monkeypatch)

    def use(name: str) -> None:
        monkeypatch.setenv("FAKE_NVML_SCENARIO", scenario_path(name))

    return use


@pytest.fixture
def make_settings(isolated: dict[str, str]) -> Callable[..., Settings]:
    def build(**flags: object) -> Settings:
        flags.setdefault("port", free_port())
        return load_settings(flags, env=dict(os.environ))

    return build
