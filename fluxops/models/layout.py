"""Where ComfyUI looks for model files: its folder names, legacy aliases and extra_model_paths.yaml.

Facts from ComfyUI's folder_paths.py (see docs/architecture.md): `unet` is an alias of `diffusion_models`,
`clip` of `text_encoders`; both work as on-disk folder names and as yaml keys. An extra_model_paths.yaml adds
search paths per folder, one path per line in a single string.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fluxops.errors import FluxopsError

if TYPE_CHECKING:
    from fluxops.models.manifest import Manifest, ModelSpec

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


def right_places(spec: ModelSpec, paths: Iterable[SearchPath], models_dir: Path) -> list[tuple[Path, str]]:
    """Where ComfyUI finds `spec`, in its order: the destination, then the other search paths of its folder
    (each with its origin: "models", "alias" or the yaml file)."""
    dest = spec.dest_path(models_dir)
    places = [(dest, "models")]
    for sp in paths:
        candidate = sp.path / spec.filename
        if sp.folder == spec.folder and candidate != dest:
            places.append((candidate, sp.origin))
    return places


def locate(spec: ModelSpec, paths: Iterable[SearchPath], models_dir: Path) -> tuple[Path, str] | None:
    """The first right place that holds a file for `spec` (and its origin), or None."""
    return next(((path, origin) for path, origin in right_places(spec, paths, models_dir) if path.is_file()), None)


def comfyui_search_paths(models_dir: Path, comfyui_dir: Path | None) -> tuple[list[SearchPath], str | None]:
    """The search paths of a ComfyUI with this models dir, and why its extra_model_paths.yaml was left out
    when it cannot be used (then only the models dir is searched)."""
    try:
        return search_paths(models_dir, extra_yamls_for(comfyui_dir)), None
    except FluxopsError as exc:
        return search_paths(models_dir, ()), exc.message


def found_paths(manifest: Manifest, models_dir: Path | None, comfyui_dir: Path | None) -> dict[str, Path]:
    """Where each manifest file is found in a right place (files found nowhere are left out)."""
    if models_dir is None:
        return {}
    paths, _why_not_yaml = comfyui_search_paths(models_dir, comfyui_dir)
    hits = {spec.id: locate(spec, paths, models_dir) for spec in manifest.files}
    return {file_id: hit[0] for file_id, hit in hits.items() if hit is not None}
