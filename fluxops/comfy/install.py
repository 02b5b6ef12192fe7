"""Find a ComfyUI install and the Python interpreter it runs with (no process started here)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# Where ComfyUI's interpreter usually lives, relative to the ComfyUI folder: a venv inside it, a venv
# beside it, or the Windows portable build's embedded Python one level up.
_CANDIDATES_POSIX = ("venv/bin/python", ".venv/bin/python", "../venv/bin/python", "../.venv/bin/python")
_CANDIDATES_WINDOWS = ("venv/Scripts/python.exe", ".venv/Scripts/python.exe", "../python_embeded/python.exe",
                       "../venv/Scripts/python.exe", "../.venv/Scripts/python.exe")


@dataclass(frozen=True)
class ComfyInstall:
    root: Path
    main_py: Path
    python: Path | None
    python_source: str  # "--comfyui-python", "venv", ".venv", "python_embeded", or "none"
    version: str | None  # from comfyui_version.py


def candidate_pythons(comfyui_dir: Path) -> list[Path]:
    names = _CANDIDATES_WINDOWS if os.name == "nt" else _CANDIDATES_POSIX
    return [(comfyui_dir / rel) for rel in names]


def find_python(comfyui_dir: Path, override: Path | None = None) -> tuple[Path | None, str]:
    """ComfyUI's interpreter: the override, else the first venv/.venv/python_embeded that exists."""
    if override is not None:
        return override, "--comfyui-python"
    for candidate in candidate_pythons(comfyui_dir):
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


def inspect_install(comfyui_dir: Path, python_override: Path | None = None) -> ComfyInstall:
    python, source = find_python(comfyui_dir, python_override)
    return ComfyInstall(root=comfyui_dir, main_py=comfyui_dir / "main.py", python=python,
                        python_source=source, version=read_version(comfyui_dir))

