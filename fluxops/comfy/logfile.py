"""ComfyUI's log files under `<state_dir>/comfy/logs/`: `comfyui.log` is the current run, and each start
rotates the previous runs to `comfyui.log.1` ... `.N` (a detached ComfyUI writes straight to the file, so
fluxops rotates at start rather than while it runs)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOG_NAME = "comfyui.log"
KEEP = 5


def log_dir(state_dir: Path) -> Path:
    return state_dir / "comfy" / "logs"


def rotate(directory: Path, keep: int = KEEP) -> Path:
    """Shift comfyui.log -> .1 -> .2 ... (dropping the oldest) and return the path for the new run."""
    directory.mkdir(parents=True, exist_ok=True)
    current = directory / LOG_NAME
    if current.exists() and current.stat().st_size > 0:
        for n in range(keep - 1, 0, -1):
            older = directory / f"{LOG_NAME}.{n}"
            if older.exists():
                os.replace(older, directory / f"{LOG_NAME}.{n + 1}")
        os.replace(current, directory / f"{LOG_NAME}.1")
    return current


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
    `keep_going()` is false and nothing is left. A log rotated by a new start (a new file at the same path)
    is followed from its beginning."""
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
            if _replaced(path, inode):
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
