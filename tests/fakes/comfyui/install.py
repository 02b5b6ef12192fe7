"""Make a temporary ComfyUI folder that runs the fake: main.py, comfyui_version.py, custom_nodes/, models/,
and venv/bin/python (a symlink to this interpreter, where fluxops looks for ComfyUI's Python)."""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

MAIN_PY = """\
# A fake ComfyUI (the fluxops test suite's stand-in), started like the real main.py.
# The test interpreter's site-packages are added because venv/bin/python is a symlink to it, and a symlinked
# venv interpreter outside its venv does not find the venv's packages by itself.
import pathlib, sys
sys.path[:0] = {paths!r}
from tests.fakes.comfyui.main import run
if __name__ == "__main__":
    sys.exit(run(pathlib.Path(__file__).resolve().parent))
"""

# Where the five production files live in a ComfyUI models folder (names as the manifest has them).
PRODUCTION_FILES: dict[str, list[str]] = {
    "diffusion_models": ["flux1-krea-dev_fp8_scaled.safetensors"],
    "text_encoders": ["clip_l.safetensors", "t5xxl_fp16.safetensors"],
    "vae": ["ae.safetensors"],
    "loras": ["FLUX.1-Turbo-Alpha.safetensors"],
}


def make_comfyui_dir(
    root: Path,
    *,
    models: Mapping[str, Sequence[str]] | None = None,
    custom_nodes: bool = True,
    version: str = "0.3.64",
    venv_python: bool = True,
) -> Path:
    """Create (or complete) a fake ComfyUI install at `root`; `models` maps a models sub-folder to file names
    (small placeholder files are written)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = [str(REPO), *sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})]
    (root / "main.py").write_text(MAIN_PY.format(paths=paths), encoding="utf-8")
    (root / "comfyui_version.py").write_text(f'__version__ = "{version}"\n', encoding="utf-8")
    if custom_nodes:
        (root / "custom_nodes").mkdir(exist_ok=True)
    for folder in ("checkpoints", "diffusion_models", "text_encoders", "vae", "loras", "unet", "clip"):
        (root / "models" / folder).mkdir(parents=True, exist_ok=True)
    for folder, names in (PRODUCTION_FILES if models is None else models).items():
        for name in names:
            path = root / "models" / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\0" * 160)
    if venv_python:
        python = root / ("venv/Scripts/python.exe" if os.name == "nt" else "venv/bin/python")
        python.parent.mkdir(parents=True, exist_ok=True)
        if not python.exists():
            python.symlink_to(sys.executable)
    return root
