"""Exclusive OS file locks (released by the kernel even after kill -9), with who holds them.

One `fluxops setup` per models dir; one `fluxops maintain` per state dir.
"""

from __future__ import annotations

import contextlib
import errno
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
              busy: str | None = None,
              unwritable: Callable[[OSError], FluxopsError] | None = None) -> Iterator[None]:
    """Hold ``lock_path`` while the block runs. Held elsewhere: wait (saying who holds it) or fail at once.
    A lock that cannot be written (full disk, read-only folder) raises ``unwritable(exc)`` when given."""
    lock = FileLock(str(lock_path))
    owner = lock_path.with_name(lock_path.name + ".owner")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        _acquire(lock, owner, wait, on_wait, busy or str(lock_path.parent))
    except OSError as exc:
        if unwritable is None:
            raise
        raise unwritable(exc) from exc
    try:
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            owner.write_text(f"{what} (pid {os.getpid()} on {socket.gethostname()}, since {started})",
                             encoding="utf-8")
        except OSError as exc:
            if unwritable is None:
                raise
            raise unwritable(exc) from exc
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()


def _acquire(lock: FileLock, owner: Path, wait: bool, on_wait: Callable[[str], None], busy: str) -> None:
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _holder(owner)
        if not wait:
            raise FluxopsError("state.locked", f"{busy} is in use by {holder}") from None
        on_wait(f"waiting for {holder} to finish with {busy} (Ctrl-C to give up)")
        lock.acquire()


def _models_unwritable(lock_path: Path) -> Callable[[OSError], FluxopsError]:
    def error(exc: OSError) -> FluxopsError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return FluxopsError("setup.disk_full", f"cannot write the lock {lock_path}: {exc.strerror}; "
                                "the disk is full, nothing was downloaded")
        return FluxopsError("download.write_failed", f"cannot write the lock {lock_path}: "
                            f"{exc.strerror or exc}")
    return error


def models_lock(models_dir: Path, *, wait: bool,
                on_wait: Callable[[str], None]) -> contextlib.AbstractContextManager[None]:
    """One setup (or prune) per models dir: the lock lives in its partial-downloads folder."""
    lock_path = models_dir / PARTIAL_DIR / LOCK_NAME
    return exclusive(lock_path, "fluxops setup", wait=wait, on_wait=on_wait, busy=str(models_dir),
                     unwritable=_models_unwritable(lock_path))
