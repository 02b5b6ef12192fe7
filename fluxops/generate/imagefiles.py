"""Writing generated images and their JSON sidecars, and measuring an image for the health check.

Nothing is overwritten: a name already taken gets ``-2``, ``-3``... Each file is written to a temporary name
in the same folder and linked into place (`fluxops.files.write_new`), so an interrupted run leaves no
half-written image and two runs can never overwrite each other's.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.files import write_new


@dataclass(frozen=True)
class ImageStats:
    width: int
    height: int
    variance: float  # mean per-channel pixel variance (0 for a flat image)


def output_stem(prefix: str) -> str:
    """``production_photo_`` -> ``production_photo`` (the SaveImage prefix without folders or trailing _)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", prefix.replace("\\", "/").rsplit("/", 1)[-1]).strip("_.")
    return stem or "image"


def free_name(folder: Path, stem: str, suffix: str = ".png") -> Path:
    """``folder/stem.png``, or ``stem-2.png``... when taken (the sidecar's name is taken into account)."""
    n = 1
    while True:
        name = stem if n == 1 else f"{stem}-{n}"
        if not (folder / f"{name}{suffix}").exists() and not (folder / f"{name}.json").exists():
            return folder / f"{name}{suffix}"
        n += 1


def ensure_writable(folder: Path) -> None:
    """Create the output folder and prove a file can be written there, before anything is queued: a run must
    not spend GPU time on images it cannot keep."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".fluxops-write-test-"):
            pass
    except OSError as exc:
        raise FluxopsError("generate.save_failed", f"the output folder {folder} cannot be written: "
                           f"{exc.strerror or exc}; nothing was queued",
                           hint="pass --output DIR (or set FLUXOPS_OUTPUT_DIR) to a folder you can write") from exc


def save_image(folder: Path, stem: str, data: bytes, sidecar: dict[str, Any]) -> tuple[Path, Path]:
    """Write the image and ``<same name>.json`` beside it; returns both paths. Another run (or another worker)
    that picks the same free name at the same moment loses the no-overwrite link and takes the next name."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            path = free_name(folder, stem)
            try:
                write_new(path, data)
            except FileExistsError:
                continue
            break
        meta_path = path.with_suffix(".json")
        sidecar = {"image": path.name, **sidecar}
        try:
            write_new(meta_path, (json.dumps(sidecar, indent=2, default=str) + "\n").encode())
        except FileExistsError:  # a sidecar with no image of that name was there: ours must not replace it
            meta_path = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:8]}.json")
            write_new(meta_path, (json.dumps(sidecar, indent=2, default=str) + "\n").encode())
    except OSError as exc:
        raise FluxopsError("generate.save_failed", f"cannot write the image to {folder}: "
                           f"{exc.strerror or exc}") from exc
    return path, meta_path


def measure_png(data: bytes) -> ImageStats:
    """Size and pixel variance of an image, decoded with Pillow (imported here: only the health check needs it)."""
    import io

    from PIL import Image, ImageStat, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
            stat = ImageStat.Stat(rgb)
            variance = sum(stat.var) / len(stat.var)
            return ImageStats(image.width, image.height, variance)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise FluxopsError("generate.check_failed", f"the returned image cannot be decoded ({exc})") from exc
