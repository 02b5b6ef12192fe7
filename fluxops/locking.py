"""One `fluxops setup` per models dir: an OS file lock (released by the kernel even after kill -9)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from fluxops.errors import FluxopsError
from fluxops.verify import PARTIAL_DIR

LOCK_NAME = "setup.lock"
OWNER_NAME = "setup.lock.owner"


def _holder(owner: Path) -> str:
    try:
        return owner.read_text(encoding="utf-8").strip() or "another fluxops process"
    except OSError:
        return "another fluxops process"


@contextlib.contextmanager
def models_lock(models_dir: Path, *, wait: bool, on_wait: Callable[[str], None]) -> Iterator[None]:
    root = models_dir / PARTIAL_DIR
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK_NAME))
    owner = root / OWNER_NAME
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _holder(owner)
        if not wait:
            raise FluxopsError("state.locked", f"{models_dir} is in use by {holder}",
                               hint="wait for it to finish, or run again without --no-wait to wait") from None
        on_wait(f"waiting for {holder} to finish with {models_dir} (Ctrl-C to give up)")
        lock.acquire()
    try:
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        owner.write_text(f"fluxops setup (pid {os.getpid()} on {socket.gethostname()}, since {started})",
                         encoding="utf-8")
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()
