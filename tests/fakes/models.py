"""Small, real safetensors files and manifests shaped like the production one, for tests and benchmarks."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

DTYPE_BYTES = {"F8_E4M3": 1, "F16": 2, "BF16": 2, "F32": 4}


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], seed: int = 0,
                      metadata: dict[str, str] | None = None) -> bytes:
    """A well-formed safetensors file: header JSON + tensor data (pseudo-random, reproducible from seed)."""
    header: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = DTYPE_BYTES[dtype]
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the reference writer pads the header to 8 bytes
    data = _pseudo_random(offset, seed)
    return struct.pack("<Q", len(raw)) + raw + data


def _pseudo_random(n: int, seed: int) -> bytes:
    out = bytearray()
    block = hashlib.sha256(f"seed-{seed}".encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def sized_safetensors(size: int, seed: int = 0, dtype: str = "F16") -> bytes:
    """A well-formed safetensors file of about ``size`` bytes (one tensor, data from os.urandom-like bytes)."""
    width = DTYPE_BYTES[dtype]
    elements = max(1, (size - 128) // width)
    return safetensors_bytes({"weight": (dtype, [elements])}, seed=seed)


@dataclass(frozen=True)
class FakeModel:
    id: str
    folder: str
    filename: str
    data: bytes
    repo: str
    repo_path: str
    gated: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# Five files shaped like the real manifest (same ids, folders, names, dtypes), a few KiB each.
def small_models(scale: int = 4096) -> list[FakeModel]:
    return [
        FakeModel("diffusion_model", "diffusion_models", "flux1-krea-dev_fp8_scaled.safetensors",
                  safetensors_bytes({"double_blocks.0.img_attn.qkv.weight": ("F8_E4M3", [scale, 4]),
                                     "double_blocks.0.img_attn.qkv.scale_weight": ("F32", [1])}, seed=1,
                                    metadata={"format": "pt"}),
                  "Comfy-Org/FLUX.1-Krea-dev_ComfyUI",
                  "split_files/diffusion_models/flux1-krea-dev_fp8_scaled.safetensors"),
        FakeModel("clip_l", "text_encoders", "clip_l.safetensors",
                  safetensors_bytes({"text_model.embeddings.weight": ("F16", [scale // 4, 2])}, seed=2),
                  "comfyanonymous/flux_text_encoders", "clip_l.safetensors"),
        FakeModel("t5xxl", "text_encoders", "t5xxl_fp16.safetensors",
                  safetensors_bytes({"encoder.block.0.weight": ("F16", [scale, 3])}, seed=3),
                  "comfyanonymous/flux_text_encoders", "t5xxl_fp16.safetensors"),
        FakeModel("vae", "vae", "ae.safetensors",
                  safetensors_bytes({"decoder.conv_in.weight": ("F32", [scale // 8, 2])}, seed=4),
                  "black-forest-labs/FLUX.1-dev", "ae.safetensors", gated=True),
        FakeModel("lora", "loras", "FLUX.1-Turbo-Alpha.safetensors",
                  safetensors_bytes({"lora_unet.down.weight": ("BF16", [scale // 4, 2])}, seed=5),
                  "alimama-creative/FLUX.1-Turbo-Alpha", "diffusion_pytorch_model.safetensors"),
    ]


def manifest_toml(models: list[FakeModel], name: str = "test-models") -> str:
    lines = ["schema = 1", f'name = "{name}"', ""]
    for m in models:
        lines += ["[[file]]", f'id = "{m.id}"', f'folder = "{m.folder}"', f'filename = "{m.filename}"',
                  f"size = {len(m.data)}", f'sha256 = "{m.sha256}"', "",
                  "[[file.source]]", f'repo = "{m.repo}"', f'path = "{m.repo_path}"', 'revision = "main"',
                  f"gated = {'true' if m.gated else 'false'}", ""]
    return "\n".join(lines)


def write_manifest(path: Path, models: list[FakeModel]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest_toml(models), encoding="utf-8")
    return path


def place(models_dir: Path, models: list[FakeModel], skip: tuple[str, ...] = ()) -> None:
    """Write the files where the manifest says."""
    for m in models:
        if m.id in skip:
            continue
        dest = models_dir / m.folder / m.filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(m.data)


def flip_byte(path: Path, offset: int = -1) -> None:
    """Corrupt one byte in place, keeping size and (optionally) the mtime unchanged."""
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(offset if offset >= 0 else st.st_size + offset)
        b = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def bad_symlink(folder: Path, kind: str, name: str) -> Path:
    """A symlink named like a manifest file that no stat() can follow: dangling, pointing at itself, or one
    of two pointing at each other."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    if kind == "dangling":
        link.symlink_to(folder / "deleted-long-ago.safetensors")
    elif kind == "self":
        link.symlink_to(link)
    else:  # a loop of two
        other = folder / "other.safetensors"
        link.symlink_to(other)
        other.symlink_to(link)
    return link


SYMLINK_KINDS = ("dangling", "self", "loop")
