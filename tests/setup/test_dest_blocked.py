"""Issue 14 item 2: something that is not a regular file where a model belongs is never moved or deleted."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.setup.conftest import Scaled
from tests.setup.test_no_traceback import assert_one_clear_line
from tests.setup.test_setup_basic import DESTS

pytestmark = pytest.mark.network


def _folder(dest: Path) -> Callable[[], object]:
    dest.mkdir(parents=True)
    (dest / "keep-me.txt").write_text("the user's notes")
    return lambda: (dest / "keep-me.txt").read_text()


def _symlink_to_corrupt(dest: Path) -> Callable[[], object]:
    target = dest.parent.parent / "elsewhere.safetensors"
    target.write_bytes(b"\0" * 1000)
    dest.parent.mkdir(parents=True)
    dest.symlink_to(target)
    return lambda: (os.readlink(dest), target.read_bytes())


def _dangling_symlink(dest: Path) -> Callable[[], object]:
    dest.parent.mkdir(parents=True)
    dest.symlink_to(dest.parent / "gone.safetensors")
    return lambda: os.readlink(dest)


@contextlib.contextmanager
def _socket_at(dest: Path) -> Iterator[Callable[[], object]]:
    dest.parent.mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(dest.parent)  # a socket path is limited to ~100 bytes: bind by its short name
    try:
        sock.bind(dest.name)
    finally:
        os.chdir(cwd)
    try:
        yield lambda: dest.is_socket()
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["folder", "symlink-to-corrupt", "dangling-symlink", "socket"])
def test_a_non_file_at_the_destination_is_left_alone(cli, scaled: Scaled, kind: str) -> None:
    dest = scaled.placed(DESTS["vae"])
    with contextlib.ExitStack() as stack:
        if kind == "socket":
            snapshot = stack.enter_context(_socket_at(dest))
        else:
            snapshot = {"folder": _folder, "symlink-to-corrupt": _symlink_to_corrupt,
                        "dangling-symlink": _dangling_symlink}[kind](dest)
        before = snapshot()
        result = cli("setup", "--repair", env=scaled.env())
        assert_one_clear_line(result, 1, str(dest))
        assert snapshot() == before  # not moved, not deleted, not written through
    assert not list((scaled.models / ".fluxops-partial").glob("*.replaced"))
    for file_id in ("clip_l", "lora"):  # the other files still arrive
        assert scaled.placed(DESTS[file_id]).read_bytes() == scaled.files[file_id].read_bytes()
