"""Make an executable that stands in for ComfyUI's Python (see fake_python.py)."""

from __future__ import annotations

import shlex
import stat
import sys
from pathlib import Path

FAKE = Path(__file__).resolve().parent / "fake_python.py"


def make_fake_python(where: Path, mode: str, torch_version: str = "2.5.1+cu124") -> Path:
    """An executable `where/bin/python` answering as `mode`, with a torch/version.py and a call log."""
    torch_dir = where / "site-packages" / "torch"
    torch_dir.mkdir(parents=True, exist_ok=True)
    (torch_dir / "version.py").write_text(f"__version__ = {torch_version!r}\n", encoding="utf-8")
    exe = where / "bin" / "python"
    exe.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "FAKE_TORCH_MODE": mode,
        "FAKE_TORCH_DIR": str(torch_dir),
        "FAKE_TORCH_LOG": str(where / "calls.log"),
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    exe.write_text(
        f'#!/bin/sh\n{exports} exec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE))} "$@"\n',
        encoding="utf-8",
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


def make_comfyui_python(comfyui_dir: Path, where: Path, mode: str = "cuda124") -> Path:
    """Replace a fake ComfyUI's venv/bin/python with one that answers fluxops's torch queries (`-c ...`) as
    `mode` and runs everything else (main.py) with this interpreter: a whole GPU machine's ComfyUI."""
    torch_dir = where / "site-packages" / "torch"
    torch_dir.mkdir(parents=True, exist_ok=True)
    (torch_dir / "version.py").write_text("__version__ = '2.5.1+cu124'\n", encoding="utf-8")
    python = comfyui_dir / "venv" / "bin" / "python"
    python.unlink(missing_ok=True)
    python.parent.mkdir(parents=True, exist_ok=True)
    fake = (f"FAKE_TORCH_MODE={mode} FAKE_TORCH_DIR={shlex.quote(str(torch_dir))} "
            f"exec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}")
    python.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then {fake} "$@"; fi\n'
                      f'exec {shlex.quote(sys.executable)} "$@"\n', encoding="utf-8")
    python.chmod(python.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return python


def calls(where: Path) -> list[str]:
    log = where / "calls.log"
    return log.read_text(encoding="utf-8").split() if log.exists() else []


__all__ = ["calls", "make_comfyui_python", "make_fake_python"]
