"""ComfyUI's log files under `<state_dir>/comfy/logs/`: `comfyui.log` is the current one, older ones are
`comfyui.log.1` ... `.N`.

A detached ComfyUI writes straight into the file (opened in append mode), so nothing between it and its log
can die and break its output. Each start rotates the previous run's log away; while it runs, a log grown past
MAX_BYTES is rotated by copy-and-truncate (as logrotate's copytruncate does: append-mode writes continue at
the new end) when `fluxops comfy start` finds it running (`comfy status` only reads).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOG_NAME = "comfyui.log"
KEEP = 5
MAX_BYTES = 10 * 1024 * 1024


def _shift(directory: Path, keep: int) -> None:
    """.N-1 -> .N ... .1 -> .2, dropping the oldest, so .1 is free."""
    for n in range(keep - 1, 0, -1):
        older = directory / f"{LOG_NAME}.{n}"
        if older.exists():
            os.replace(older, directory / f"{LOG_NAME}.{n + 1}")


def rotate(directory: Path, keep: int = KEEP) -> Path:
    """Before a new run: move comfyui.log to .1 (older ones up) and return the path for the new run."""
    directory.mkdir(parents=True, exist_ok=True)
    current = directory / LOG_NAME
    if current.exists() and current.stat().st_size > 0:
        _shift(directory, keep)
        os.replace(current, directory / f"{LOG_NAME}.1")
    return current


def trim(path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> bool:
    """While ComfyUI runs: if its log is larger than `max_bytes`, copy it to .1 and truncate it in place (the
    server keeps its file open). Lines written between the copy and the truncation are lost; that window is
    a few milliseconds once per `max_bytes`. Returns whether it rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
        _shift(path.parent, keep)
        shutil.copyfile(path, path.parent / f"{LOG_NAME}.1")
        os.truncate(path, 0)
    except OSError:
        return False  # a log that cannot be rotated now is still a log; try again next time
    return True


def tail(path: Path, lines: int, end: int | None = None) -> list[str]:
    """The last `lines` lines of a text file up to byte `end` (default: its end), reading backwards in
    blocks so a big log costs little."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END) if end is None else end
            block, data = 64 * 1024, b""
            while end > 0 and data.count(b"\n") <= lines:
                start = max(0, end - block)
                fh.seek(start)
                data = fh.read(end - start) + data
                end = start
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]


def follow(
    path: Path, keep_going: Callable[[], bool], offset: int | None = None, poll: float = 0.2
) -> Iterator[str]:
    """Yield the lines of `path` from byte `offset` (default: its current end) as they are written, until
    `keep_going()` is false and nothing is left. A log rotated by a new start (a new file at the same path) or
    truncated by trim() is followed from its beginning."""
    fh = open(path, "rb")  # noqa: SIM115 - reopened on rotation below
    try:
        fh.seek(0, os.SEEK_END) if offset is None else fh.seek(offset)
        inode = os.fstat(fh.fileno()).st_ino
        partial = b""
        while True:
            chunk = fh.readline()
            if chunk:
                partial += chunk
                if partial.endswith(b"\n"):
                    yield partial.decode("utf-8", errors="replace").rstrip("\r\n")
                    partial = b""
                continue
            stopping = not keep_going()  # asked before the last look, so nothing written before is missed
            if os.fstat(fh.fileno()).st_size < fh.tell():  # truncated by trim(): read it from the start
                fh.seek(0)
                continue
            if _replaced(path, inode):
                # What was written to the old file before it moved away is still unread: finish it first.
                *complete, partial = (partial + fh.read()).split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", errors="replace").rstrip("\r")
                if partial:
                    yield partial.decode("utf-8", errors="replace")
                    partial = b""
                fh.close()
                fh = open(path, "rb")  # noqa: SIM115
                inode = os.fstat(fh.fileno()).st_ino
                continue
            if stopping:
                if partial:
                    yield partial.decode("utf-8", errors="replace")
                return
            time.sleep(poll)
    finally:
        fh.close()


def _replaced(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return False
