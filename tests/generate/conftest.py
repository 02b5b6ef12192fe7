"""Fixtures for the generate tests: the fake ComfyUI (from tests/comfy) started as a real process, a helper
to read what it received and to set its faults, and a runner for `fluxops generate` against it."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.comfy.conftest import comfy, comfyui_dir, release, start_fake  # noqa: F401 (fixtures used here)

DATA = Path(__file__).resolve().parents[1] / "data" / "comfyui"


@dataclass
class Fake:
    proc: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            data = response.read()
            return json.loads(data) if data else None

    def received(self) -> dict[str, Any]:
        return self.get("/fake/received")

    def faults(self, **values: Any) -> None:
        self.post("/fake/faults", values)

    def history(self) -> dict[str, Any]:
        return self.get("/history")


def without_tracebacks(value: Any) -> Any:
    """A ComfyUI answer without its tracebacks (they name the server's own files and lines)."""
    if isinstance(value, dict):
        return {k: without_tracebacks(v) for k, v in value.items() if k != "traceback"}
    if isinstance(value, list):
        return [without_tracebacks(v) for v in value]
    return value


@pytest.fixture
def fake(start_fake: Callable[..., tuple[subprocess.Popen, int]]) -> Fake:  # noqa: F811
    proc, port = start_fake()
    return Fake(proc, port)


@pytest.fixture
def generate(cli: Callable[..., subprocess.CompletedProcess[str]], fake: Fake, tmp_path: Path
             ) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`fluxops generate --port <fake> --output <tmp>/out ARGS` as a subprocess."""

    def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return cli("generate", "--port", str(fake.port), "--output", str(tmp_path / "out"), *args, **kwargs)

    return run
