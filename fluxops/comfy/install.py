"""Find a ComfyUI install and the Python interpreter it runs with (no process started here)."""

from __future__ import annotations

import os
import re
from pathlib import Path

# Where ComfyUI's interpreter usually lives, relative to the ComfyUI folder: a venv inside it, a venv
# beside it, or the Windows portable build's embedded Python one level up.
_CANDIDATES_POSIX = ("venv/bin/python", ".venv/bin/python", "../venv/bin/python", "../.venv/bin/python")
_CANDIDATES_WINDOWS = ("venv/Scripts/python.exe", ".venv/Scripts/python.exe", "../python_embeded/python.exe",
                       "../venv/Scripts/python.exe", "../.venv/Scripts/python.exe")


def _candidate_pythons(comfyui_dir: Path) -> list[Path]:
    names = _CANDIDATES_WINDOWS if os.name == "nt" else _CANDIDATES_POSIX
    return [(comfyui_dir / rel) for rel in names]


def find_python(comfyui_dir: Path | None, override: Path | None = None) -> tuple[Path | None, str]:
    """ComfyUI's interpreter and where it came from: the override (`--comfyui-python`), else the first
    venv/.venv/python_embeded beside the ComfyUI folder that exists (`None, "none"` when there is none)."""
    if override is not None:
        return override, "--comfyui-python"
    if comfyui_dir is None:
        return None, "none"
    for candidate in _candidate_pythons(comfyui_dir):
        if candidate.is_file():
            label = next(part for part in ("python_embeded", ".venv", "venv") if part in candidate.parts)
            return candidate, label
    return None, "none"


def read_version(comfyui_dir: Path) -> str | None:
    """ComfyUI's version as its own comfyui_version.py states it."""
    try:
        text = (comfyui_dir / "comfyui_version.py").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text)
    return match.group(1) if match else None
