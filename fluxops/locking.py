"""Exclusive OS file locks (released by the kernel even after kill -9), with who holds them.

One `fluxops setup` per models dir; one `fluxops maintain` per state dir.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from fluxops.errors import FluxopsError
from fluxops.hub.partial import PARTIAL_DIR

LOCK_NAME = "setup.lock"


def _holder(owner: Path) -> str:
    try:
        return owner.read_text(encoding="utf-8").strip() or "another fluxops process"
    except OSError:
        return "another fluxops process"


@contextlib.contextmanager
def exclusive(lock_path: Path, what: str, *, wait: bool, on_wait: Callable[[str], None],
              busy: str | None = None) -> Iterator[None]:
    """Hold ``lock_path`` while the block runs. Held elsewhere: wait (saying who holds it) or fail at once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    owner = lock_path.with_name(lock_path.name + ".owner")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _holder(owner)
        if not wait:
            raise FluxopsError("state.locked", f"{busy or lock_path.parent} is in use by {holder}") from None
        on_wait(f"waiting for {holder} to finish with {busy or lock_path.parent} (Ctrl-C to give up)")
        lock.acquire()
    try:
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        owner.write_text(f"{what} (pid {os.getpid()} on {socket.gethostname()}, since {started})", encoding="utf-8")
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()


def models_lock(models_dir: Path, *, wait: bool,
                on_wait: Callable[[str], None]) -> contextlib.AbstractContextManager[None]:
    return exclusive(models_dir / PARTIAL_DIR / LOCK_NAME, "fluxops setup", wait=wait, on_wait=on_wait,
                     busy=str(models_dir))
