"""Where ComfyUI looks for model files: its folder names, legacy aliases and extra_model_paths.yaml.

Facts from ComfyUI's folder_paths.py (https://github.com/comfyanonymous/ComfyUI/blob/master/folder_paths.py):
`unet` is an alias of `diffusion_models`, `clip` of `text_encoders`; both work as on-disk folder names and as
yaml keys. An extra_model_paths.yaml adds search paths per folder, one path per line in a single string
(https://github.com/comfyanonymous/ComfyUI/blob/master/utils/extra_config.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fluxops.errors import FluxopsError

# Canonical folder name -> on-disk folder names under <models>, in ComfyUI's search order.
FOLDERS: dict[str, tuple[str, ...]] = {
    "diffusion_models": ("unet", "diffusion_models"),
    "text_encoders": ("text_encoders", "clip"),
    "vae": ("vae",),
    "loras": ("loras",),
    "checkpoints": ("checkpoints",),
    "clip_vision": ("clip_vision",),
    "style_models": ("style_models",),
    "embeddings": ("embeddings",),
    "vae_approx": ("vae_approx",),
    "controlnet": ("controlnet", "t2i_adapter"),
    "gligen": ("gligen",),
    "upscale_models": ("upscale_models",),
    "hypernetworks": ("hypernetworks",),
    "photomaker": ("photomaker",),
    "model_patches": ("model_patches",),
    "audio_encoders": ("audio_encoders",),
}
ALIASES: dict[str, str] = {"unet": "diffusion_models", "clip": "text_encoders", "t2i_adapter": "controlnet"}
MODEL_EXTENSIONS = (".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft")


def canonical(folder: str) -> str | None:
    """The canonical folder name for a folder or alias, or None when ComfyUI has no such model folder."""
    if folder in FOLDERS:
        return folder
    return ALIASES.get(folder)


@dataclass(frozen=True)
class SearchPath:
    folder: str  # canonical
    path: Path
    origin: str  # "models", "alias", or the yaml file that declared it


def _yaml_paths(yaml_file: Path) -> list[SearchPath]:
    import yaml

    try:
        data = yaml.safe_load(yaml_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FluxopsError("comfyui.extra_paths_invalid", f"{yaml_file}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise FluxopsError("comfyui.extra_paths_invalid", f"{yaml_file}: not valid YAML ({exc})") from exc
    found: list[SearchPath] = []
    if not isinstance(data, dict):
        return found
    for block_name, block in data.items():
        if not isinstance(block, dict):
            continue
        base = block.get("base_path")
        base_dir = Path(os.path.expandvars(os.path.expanduser(str(base)))) if base else yaml_file.parent
        if not base_dir.is_absolute():
            base_dir = yaml_file.parent / base_dir
        for key, value in block.items():
            if key in ("base_path", "is_default"):
                continue
            folder = canonical(str(key))
            if folder is None:
                continue
            if not isinstance(value, str):
                # ComfyUI itself crashes at start on a YAML list here (value.split): say so now.
                raise FluxopsError("comfyui.extra_paths_invalid",
                                   f"{yaml_file}: {block_name}.{key} must be a string with one path per line, "
                                   f"not {type(value).__name__}; ComfyUI would crash at start")
            for line in value.split("\n"):
                line = line.strip()
                if line:
                    path = Path(os.path.expandvars(os.path.expanduser(line)))
                    found.append(SearchPath(folder, path if path.is_absolute() else base_dir / path,
                                            str(yaml_file)))
    return found


def search_paths(models_dir: Path, extra_yamls: Iterable[Path] = ()) -> list[SearchPath]:
    """Every directory ComfyUI searches for model files, per canonical folder."""
    paths: list[SearchPath] = []
    for folder, names in FOLDERS.items():
        for name in names:
            paths.append(SearchPath(folder, models_dir / name, "models" if name == folder else "alias"))
    for yaml_file in extra_yamls:
        if yaml_file.is_file():
            paths.extend(_yaml_paths(yaml_file))
    return paths


def extra_yamls_for(comfyui_dir: Path | None) -> list[Path]:
    """The extra_model_paths.yaml files ComfyUI loads by itself."""
    if comfyui_dir is None:
        return []
    candidate = comfyui_dir / "extra_model_paths.yaml"
    return [candidate] if candidate.is_file() else []
