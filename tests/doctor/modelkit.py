"""Generated model trees for doctor tests: safetensors files (header JSON + zero data) and their manifest.

Large files are sparse (the data is a hole), so a 12 GB "diffusion model" costs no disk and its header
reads like the real one's.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from fluxops.models.tensorfile import DTYPE_BYTES

# id -> (folder, filename, dtype, elements): the five files of the production workflow.
REAL = {
    "diffusion_model": (
        "diffusion_models",
        "flux1-krea-dev_fp8_scaled.safetensors",
        "F8_E4M3",
        11_901_000_000,
    ),
    "clip_l": ("text_encoders", "clip_l.safetensors", "F16", 123_000_000),
    "t5xxl": ("text_encoders", "t5xxl_fp16.safetensors", "F16", 4_893_000_000),
    "vae": ("vae", "ae.safetensors", "F32", 83_800_000),
    "lora": ("loras", "FLUX.1-Turbo-Alpha.safetensors", "BF16", 347_000_000),
}
TINY = {key: (folder, name, dtype, 64 + i) for i, (key, (folder, name, dtype, _n)) in enumerate(REAL.items())}
SOURCES = {
    "vae": [
        ("black-forest-labs/FLUX.1-dev", "ae.safetensors", True),
        ("Comfy-Org/Lumina_Image_2.0_Repackaged", "split_files/vae/ae.safetensors", False),
    ],
}


def write_safetensors(path: Path, dtype: str, elements: int) -> int:
    """A well-formed safetensors file with one zero tensor; returns its size."""
    nbytes = elements * DTYPE_BYTES[dtype]
    header = json.dumps(
        {
            "weight": {"dtype": dtype, "shape": [elements], "data_offsets": [0, nbytes]},
            "__metadata__": {"format": "pt"},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(8 + len(header) + nbytes)  # zeros; sparse where the file system allows
    return 8 + len(header) + nbytes


def tensor_bytes(kit: dict[str, tuple[str, str, str, int]], file_id: str) -> int:
    _folder, _name, dtype, elements = kit[file_id]
    return elements * DTYPE_BYTES[dtype]


def make_models(
    models_dir: Path,
    manifest_path: Path,
    kit: dict[str, tuple[str, str, str, int]] | None = None,
    skip: tuple[str, ...] = (),
    hash_files: bool = False,
    gated_only: bool = False,
) -> Path:
    """Write the files of `kit` (all but `skip`) under models_dir and a manifest naming all of them."""
    kit = kit or TINY
    entries = []
    for file_id, (folder, name, dtype, elements) in kit.items():
        path = models_dir / folder / name
        if file_id in skip:
            size = 8 + 128 + elements * DTYPE_BYTES[dtype]
            sha = "0" * 64
        else:
            size = write_safetensors(path, dtype, elements)
            sha = hashlib.sha256(path.read_bytes()).hexdigest() if hash_files else "0" * 64
        sources = SOURCES.get(file_id, [(f"org/{file_id.replace('_', '-')}", name, False)])
        if gated_only and any(g for _r, _p, g in sources):
            sources = [s for s in sources if s[2]]
        source_text = "".join(
            f'\n[[file.source]]\nrepo = "{repo}"\npath = "{src}"\ngated = {str(g).lower()}\n'
            for repo, src, g in sources
        )
        entries.append(
            f'[[file]]\nid = "{file_id}"\nfolder = "{folder}"\nfilename = "{name}"\n'
            f'size = {size}\nsha256 = "{sha}"\n{source_text}'
        )
    manifest_path.write_text('schema = 1\nname = "doctor-test"\n\n' + "\n".join(entries), encoding="utf-8")
    return manifest_path


__all__ = ["REAL", "TINY", "make_models", "tensor_bytes", "write_safetensors"]
