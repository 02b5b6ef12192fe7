"""fluxops.files: the atomic and no-overwrite writes every command relies on."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from fluxops import files


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    files.write_atomic(target, b"old")
    files.write_atomic(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


@pytest.mark.parametrize("hard_links", [True, False], ids=["links", "no-links"])
def test_write_new_never_overwrites(tmp_path: Path, monkeypatch, hard_links: bool) -> None:
    if not hard_links:  # a FAT/exFAT volume or a share without hard links
        def no_links(src, dst):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "image.png"
    files.write_new(target, b"first")
    with pytest.raises(FileExistsError):
        files.write_new(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["image.png"]


def test_move_no_overwrite_across_file_systems_copies_then_links(tmp_path: Path, monkeypatch) -> None:
    src, dst = tmp_path / "a.bin", tmp_path / "other" / "b.bin"
    src.write_bytes(b"x" * 1000)
    real_link = os.link
    calls = []

    def cross_device(a, b):
        calls.append((Path(a), Path(b)))
        if Path(a) == src:  # the source is on another device; the temporary copy beside dst is not
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(a, b)

    monkeypatch.setattr(os, "link", cross_device)
    files.move_no_overwrite(src, dst)
    assert dst.read_bytes() == b"x" * 1000 and not src.exists()
    assert len(calls) == 2 and calls[1][1] == dst
    assert [p.name for p in dst.parent.iterdir()] == ["b.bin"]


def test_move_no_overwrite_keeps_both_when_the_destination_exists(tmp_path: Path) -> None:
    src, dst = tmp_path / "a.bin", tmp_path / "b.bin"
    src.write_bytes(b"mine")
    dst.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        files.move_no_overwrite(src, dst)
    assert src.read_bytes() == b"mine" and dst.read_bytes() == b"theirs"
