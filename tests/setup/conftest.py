"""Fixtures for `fluxops setup`: a fake Hub on loopback and a scaled-down manifest of real safetensors files."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.hub import FakeHub
from tests.helpers import spawn_fluxops, stopping, wait_until

SEGMENT = 256 * 1024  # small segments, so a file of a few MiB has several
GOOD_TOKEN = "hf_goodtokenAAAAbcd1234"
BFL = "black-forest-labs/FLUX.1-dev"


def make_safetensors(path: Path, data_bytes: int, seed: int) -> Path:
    """A well-formed safetensors file: one U8 tensor of pseudo-random bytes."""
    header = json.dumps({"weight": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]},
                         "__metadata__": {"seed": str(seed)}}).encode()
    header += b" " * (-len(header) % 8)
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    body = (block * (data_bytes // len(block) + 1))[:data_bytes]
    body = bytes(b ^ (i * 7 % 251) for i, b in enumerate(body[:4096])) + body[4096:]
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)
    return path


@dataclass
class Scaled:
    manifest: Path
    models: Path
    files: dict[str, Path]  # id -> the bytes the Hub serves
    hub: FakeHub

    def env(self, **extra: str) -> dict[str, str]:
        env = {"HF_ENDPOINT": self.hub.endpoint, "FLUXOPS_MODELS_DIR": str(self.models),
               "FLUXOPS_MANIFEST": str(self.manifest), "FLUXOPS_SEGMENT_SIZE": str(SEGMENT)}
        env.update(extra)
        return env

    def placed(self, dest: str) -> Path:
        return self.models / dest

    @property
    def total(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())


def _entry(file_id: str, folder: str, filename: str, path: Path, sources: list[dict[str, object]]) -> str:
    data = path.read_bytes()
    lines = [f'[[file]]\nid = "{file_id}"\nfolder = "{folder}"\nfilename = "{filename}"\n'
             f"size = {len(data)}\nsha256 = \"{hashlib.sha256(data).hexdigest()}\"\n"]
    for src in sources:
        lines.append(f'[[file.source]]\nrepo = "{src["repo"]}"\npath = "{src["path"]}"\n'
                     f'revision = "{src.get("revision", "main")}"\ngated = {str(src.get("gated", False)).lower()}\n')
    return "\n".join(lines)


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    fake = FakeHub()
    fake.tokens[GOOD_TOKEN] = "alice"
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def scaled(tmp_path: Path, hub: FakeHub, isolated: dict[str, str]) -> Scaled:
    """Three files like the real manifest's: a CDN-redirected encoder, a gated VAE with an ungated mirror,
    and a LoRA renamed on placement."""
    src = tmp_path / "hub-data"
    src.mkdir()
    clip = make_safetensors(src / "clip_l.safetensors", 1_500_000, 1)
    vae = make_safetensors(src / "ae.safetensors", 900_000, 2)
    lora = make_safetensors(src / "lora.safetensors", 2_100_000, 3)
    hub.add("comfyanonymous/flux_text_encoders", "clip_l.safetensors", clip, cdn=True)
    hub.add(BFL, "ae.safetensors", vae, gated=True)
    hub.add("Comfy-Org/Lumina_Image_2.0_Repackaged", "split_files/vae/ae.safetensors", vae)
    hub.add("alimama-creative/FLUX.1-Turbo-Alpha", "diffusion_pytorch_model.safetensors", lora)
    text = 'schema = 1\nname = "scaled"\n\n' + "\n".join([
        _entry("clip_l", "text_encoders", "clip_l.safetensors", clip,
               [{"repo": "comfyanonymous/flux_text_encoders", "path": "clip_l.safetensors",
                 "revision": hub.commit("comfyanonymous/flux_text_encoders")}]),
        _entry("vae", "vae", "ae.safetensors", vae,
               [{"repo": BFL, "path": "ae.safetensors", "gated": True},
                {"repo": "Comfy-Org/Lumina_Image_2.0_Repackaged", "path": "split_files/vae/ae.safetensors"}]),
        _entry("lora", "loras", "FLUX.1-Turbo-Alpha.safetensors", lora,
               [{"repo": "alimama-creative/FLUX.1-Turbo-Alpha", "path": "diffusion_pytorch_model.safetensors"}]),
    ])
    manifest = tmp_path / "scaled.toml"
    manifest.write_text(text)
    models = tmp_path / "models"
    models.mkdir()
    return Scaled(manifest, models, {"clip_l": clip, "vae": vae, "lora": lora}, hub)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with (size, mtime_ns): to prove a command touched nothing."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


def spawn(scaled: Scaled, *args: str, stderr: Path | None = None, **env: str) -> subprocess.Popen[str]:
    """`fluxops setup ARGS` as a background process (for kill -9, Ctrl-C and lock tests)."""
    return spawn_fluxops("setup", *args, env=scaled.env(**env), stderr=stderr)


def kill_partway(scaled: Scaled, served: float, **env: str) -> None:
    """`fluxops setup` in the background, killed (-9) once the Hub has served `served` bytes, and reaped."""
    with stopping(spawn(scaled, **env)):
        wait_until(lambda: scaled.hub.served.bytes >= served)
