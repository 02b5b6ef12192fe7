"""ComfyUI runs custom nodes in its own process, and any of them can read /proc/<pid>/environ: fluxops starts
it without the Hugging Face token (issue 14, item 4). The fake ComfyUI records the environment it was given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.network

TOKEN = "hf_abcdefghijklmnopqrstuvwxyz0123456789"


def _environments(pid_dir: Path) -> list[dict[str, str]]:
    return [json.loads(p.read_text())["environ"] for p in sorted(pid_dir.glob("*.json"))]


def _assert_no_token(pid_dir: Path) -> None:
    [environ] = _environments(pid_dir)
    assert environ.get("KEEP_ME") == "1"  # the rest of the environment still reaches ComfyUI
    assert not {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN"} & set(environ)
    assert all(TOKEN not in value for value in environ.values())


TOKEN_ENV = {"HF_TOKEN": TOKEN, "HUGGING_FACE_HUB_TOKEN": TOKEN, "MY_COPY_OF_THE_TOKEN": TOKEN, "KEEP_ME": "1"}


def test_comfy_start_passes_no_token(comfy: Any, no_leftover_processes: Path) -> None:
    result = comfy("start", env=TOKEN_ENV)
    assert result.returncode == 0, result.stderr
    _assert_no_token(no_leftover_processes)


def test_generate_autostart_passes_no_token(comfy: Any, cli: Any, tmp_path: Path,
                                            no_leftover_processes: Path) -> None:
    result = cli("generate", "--seed", "1", "--output", str(tmp_path / "out"), env=TOKEN_ENV)
    assert result.returncode == 0, result.stderr
    _assert_no_token(no_leftover_processes)
