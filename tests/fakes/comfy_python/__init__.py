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


def calls(where: Path) -> list[str]:
    log = where / "calls.log"
    return log.read_text(encoding="utf-8").split() if log.exists() else []


__all__ = ["calls", "make_fake_python"]
