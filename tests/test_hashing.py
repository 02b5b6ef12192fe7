"""fluxops's sha256 and blake3 equal the reference tools' on real files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fluxops.models.hashing import CHUNK, FileKey, VerifyCache, blake3_file, hash_file

SIZES = [0, 1, 1023, 1024, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("hash")
    out = []
    for size in SIZES:
        path = root / f"f{size}.bin"
        path.write_bytes(bytes((i * 7 + size) % 251 for i in range(min(size, 4096))) * (size // 4096 + 1)
                         if size else b"")
        with path.open("r+b") as fh:
            fh.truncate(size)
        out.append(path)
    return out


@pytest.mark.parametrize(("tool_name", "field"), [("sha256sum", "sha256"), ("b3sum", "blake3")])
def test_hashes_match_the_reference_tools(files: list[Path], tool_name: str, field: str) -> None:
    tool = shutil.which(tool_name)
    if tool is None:
        pytest.skip(f"{tool_name} not installed (CI installs b3sum)")
    ref = subprocess.run([tool, *map(str, files)], capture_output=True, text=True, check=True).stdout.split("\n")
    for path, line in zip(files, ref[: len(files)], strict=True):
        expected = line.split()[0]
        assert getattr(hash_file(path), field) == expected, path
        if field == "blake3":  # the memory-mapped re-check as well as the one-read pair
            assert blake3_file(path) == expected, path


def test_blake3_known_vector(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    expected = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # BLAKE3 spec, empty input
    assert hash_file(empty).blake3 == expected and blake3_file(empty) == expected


def test_progress_reports_every_byte(files: list[Path]) -> None:
    seen: list[int] = []
    hash_file(files[-1], on_progress=seen.append)
    assert sum(seen) == files[-1].stat().st_size


def test_cache_roundtrip_and_key(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"abc")
    cache = VerifyCache(tmp_path / "c.json")
    key = FileKey.of(f)
    assert cache.lookup(key, "a" * 64) is None
    cache.record(key, "a" * 64, "b" * 64)
    cache.save()
    again = VerifyCache(tmp_path / "c.json")
    assert again.lookup(key, "a" * 64) is not None
    assert again.lookup(key, "c" * 64) is None  # another expected hash: not the same verdict
    assert again.blake3_for("a" * 64) == "b" * 64
    f.write_bytes(b"abcd")
    assert again.lookup(FileKey.of(f), "a" * 64) is None
