"""ComfyUI's model folders (folder_paths.py + utils/extra_config.py, v0.3.64), as the fake serves them.

Listing is done on every request (the real server caches and refreshes on a directory mtime change, which
gives the same answers): recursive, following symlinks, filtered by extension, sorted, `/`-separated.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import yaml

MODEL_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
LEGACY = {"unet": "diffusion_models", "clip": "text_encoders"}

# Canonical name -> (sub-folders of <models>, extensions; empty = any), in the order /models lists them.
_DEFAULTS: dict[str, tuple[tuple[str, ...], set[str]]] = {
    "checkpoints": (("checkpoints",), MODEL_EXTENSIONS),
    "configs": (("configs",), {".yaml"}),
    "loras": (("loras",), MODEL_EXTENSIONS),
    "vae": (("vae",), MODEL_EXTENSIONS),
    "text_encoders": (("text_encoders", "clip"), MODEL_EXTENSIONS),
    "diffusion_models": (("unet", "diffusion_models"), MODEL_EXTENSIONS),
    "clip_vision": (("clip_vision",), MODEL_EXTENSIONS),
    "style_models": (("style_models",), MODEL_EXTENSIONS),
    "embeddings": (("embeddings",), MODEL_EXTENSIONS),
    "diffusers": (("diffusers",), {"folder"}),
    "vae_approx": (("vae_approx",), MODEL_EXTENSIONS),
    "controlnet": (("controlnet", "t2i_adapter"), MODEL_EXTENSIONS),
    "gligen": (("gligen",), MODEL_EXTENSIONS),
    "upscale_models": (("upscale_models",), MODEL_EXTENSIONS),
    "custom_nodes": ((), set()),
    "hypernetworks": (("hypernetworks",), MODEL_EXTENSIONS),
    "photomaker": (("photomaker",), MODEL_EXTENSIONS),
    "classifiers": (("classifiers",), {""}),
    "model_patches": (("model_patches",), MODEL_EXTENSIONS),
    "audio_encoders": (("audio_encoders",), MODEL_EXTENSIONS),
}
# main.py adds <output>/<name> for these (the name on disk, then the canonical folder it feeds).
_OUTPUT_FOLDERS = (
    ("checkpoints", "checkpoints"),
    ("clip", "text_encoders"),
    ("vae", "vae"),
    ("diffusion_models", "diffusion_models"),
    ("loras", "loras"),
)


class FolderPaths:
    def __init__(self, base_dir: Path, output_dir: Path):
        models = base_dir / "models"
        self.paths: dict[str, list[str]] = {}
        self.extensions: dict[str, set[str]] = {}
        for name, (subdirs, exts) in _DEFAULTS.items():
            self.paths[name] = [str(models / sub) for sub in subdirs]
            self.extensions[name] = set(exts)
        self.paths["custom_nodes"] = [str(base_dir / "custom_nodes")]
        for on_disk, folder in _OUTPUT_FOLDERS:
            self.paths[folder].append(str(output_dir / on_disk))

    def add(self, folder: str, path: str, is_default: bool = False) -> None:
        folder = LEGACY.get(folder, folder)
        if folder not in self.paths:  # an unknown key makes a new folder that accepts any extension
            self.paths[folder] = []
            self.extensions[folder] = set()
        if is_default:
            self.paths[folder].insert(0, path)
        else:
            self.paths[folder].append(path)

    def load_extra_yaml(self, yaml_path: Path) -> None:
        """Exactly ComfyUI's loader: a YAML list value crashes with AttributeError (value.split)."""
        config = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        yaml_dir = os.path.dirname(os.path.abspath(yaml_path))
        for block in config:
            conf = config[block]
            if conf is None:
                continue
            base_path = None
            if "base_path" in conf:
                base_path = os.path.expandvars(os.path.expanduser(conf.pop("base_path")))
                if not os.path.isabs(base_path):
                    base_path = os.path.abspath(os.path.join(yaml_dir, base_path))
            is_default = bool(conf.pop("is_default", False))
            for key in conf:
                for line in conf[key].split("\n"):
                    if not line:
                        continue
                    full = os.path.join(base_path, line) if base_path else line
                    if not base_path and not os.path.isabs(full):
                        full = os.path.abspath(os.path.join(yaml_dir, line))
                    full = os.path.normpath(full)
                    logging.info("Adding extra search path %s %s", key, full)
                    self.add(key, full, is_default)

    def names(self) -> list[str]:
        return list(self.paths)

    def files(self, folder: str) -> list[str]:
        """Relative names of a canonical folder's files, as COMBO lists and /models/{folder} show them."""
        exts = self.extensions[folder]
        found: set[str] = set()
        for directory in self.paths[folder]:
            if not os.path.isdir(directory):
                continue
            for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
                dirnames[:] = [d for d in dirnames if d != ".git"]
                for filename in filenames:
                    if exts and os.path.splitext(filename)[1].lower() not in exts and "" not in exts:
                        continue
                    rel = os.path.relpath(os.path.join(dirpath, filename), directory)
                    found.add(rel.replace(os.sep, "/"))
        return sorted(found)
