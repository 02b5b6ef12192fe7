"""sha256 (and blake3) of a download as it lands: hashed in order from the page cache, following the contiguous
written prefix, so the digest is ready moments after the last byte (segments arrive out of order; the hasher
waits for the hole at its position to fill)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from fluxops.errors import FluxopsError

HASH_CHUNK = 8 * 1024 * 1024


class PrefixHasher:
    def __init__(self, fd: int, size: int, part: Path, *, with_blake3: bool, cond: threading.Condition,
                 prefix_end: Callable[[], int], give_up: Callable[[], bool]):
        """``prefix_end`` and ``give_up`` are called with ``cond`` held; ``give_up``: stopped, failed, or no
        writer left (then the digest is never reached and the writers' error is the one reported)."""
        self.fd, self.size, self.part, self.with_blake3 = fd, size, part, with_blake3
        self.cond, self.prefix_end, self.give_up = cond, prefix_end, give_up

    def run(self) -> tuple[str, str | None] | None:
        """The digests once every byte is hashed; None when it gave up first."""
        sha = hashlib.sha256()
        b3 = None
        if self.with_blake3:
            import blake3

            b3 = blake3.blake3()
        pos = 0
        while pos < self.size:
            with self.cond:
                while self.prefix_end() <= pos and not self.give_up():
                    self.cond.wait(0.5)
                target = self.prefix_end()
            if target <= pos:
                return None
            while pos < target:
                data = os.pread(self.fd, min(HASH_CHUNK, target - pos), pos)
                if not data:
                    raise FluxopsError("download.write_failed", f"{self.part} shrank while downloading")
                sha.update(data)
                if b3 is not None:
                    b3.update(data)
                pos += len(data)
        return sha.hexdigest(), (b3.hexdigest() if b3 is not None else None)
