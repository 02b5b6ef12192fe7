"""Fast file hashing (sha256 and blake3 in one read) and the verification cache.

The pins are sha256, so the first check of a file must be sha256. hashlib and blake3 both release the GIL
on large buffers, so files hash in parallel threads with no per-byte Python work. While sha256 runs, the
same buffers feed blake3; once a file's sha256 has matched its pin, its blake3 is recorded, and later
re-checks (`verify --full`) compare multi-threaded, memory-mapped blake3 instead: same trust, far faster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxops.files import write_atomic

CHUNK = 8 * 1024 * 1024
CACHE_VERSION = 1
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Digests:
    sha256: str
    blake3: str | None


def hash_file(path: Path, with_blake3: bool = True, on_progress: ProgressFn | None = None) -> Digests:
    """sha256 (and blake3, from the same read) of a file, reading large chunks into one reused buffer."""
    import blake3

    sha = hashlib.sha256()
    b3 = blake3.blake3() if with_blake3 else None
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            chunk = view[:n]
            sha.update(chunk)
            if b3 is not None:
                b3.update(chunk)
            if on_progress is not None:
                on_progress(n)
    return Digests(sha.hexdigest(), b3.hexdigest() if b3 is not None else None)


def blake3_file(path: Path, on_progress: ProgressFn | None = None) -> str:
    """blake3 of a file with all cores (memory-mapped, Rust threads)."""
    import blake3

    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    hasher.update_mmap(str(path))
    if on_progress is not None:
        on_progress(path.stat().st_size)
    return hasher.hexdigest()


@dataclass(frozen=True)
class FileKey:
    """What must be unchanged for a cached verdict to stand."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: Path, st: os.stat_result | None = None) -> FileKey:
        st = st or path.stat()
        # st_ino is the file id on Windows too (Python fills it from the volume's file index).
        return cls(str(path.absolute()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


class VerifyCache:
    """Verdicts of files whose sha256 matched, keyed on (path, size, mtime_ns, inode, device, expected sha256).

    Kept as one JSON file in the state dir, written atomically. A missing or corrupt cache is treated as
    empty: the worst case is a re-hash, never a wrong verdict.
    """

    def __init__(self, path: Path):
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        self._blake3: dict[str, str] = {}  # sha256 -> blake3 of the same bytes
        self._dirty = False
        self._lock = threading.RLock()  # setup saves after each placed file while other files still record
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != CACHE_VERSION:
                return
            entries, b3 = data["entries"], data["blake3"]
            if isinstance(entries, dict) and isinstance(b3, dict):
                self._entries, self._blake3 = entries, b3
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._entries, self._blake3 = {}, {}

    def lookup(self, key: FileKey, sha256: str) -> float | None:
        """When the file was verified, if the cached verdict still holds."""
        entry = self._entries.get(key.path)
        if not isinstance(entry, dict):
            return None
        expected = {"size": key.size, "mtime_ns": key.mtime_ns, "inode": key.inode, "device": key.device,
                    "sha256": sha256}
        if any(entry.get(k) != v for k, v in expected.items()):
            return None
        verified_at = entry.get("verified_at")
        return float(verified_at) if isinstance(verified_at, (int, float)) else 0.0

    def blake3_for(self, sha256: str) -> str | None:
        return self._blake3.get(sha256)

    def record(self, key: FileKey, sha256: str, blake3: str | None) -> None:
        with self._lock:
            self._record(key, sha256, blake3)

    def _record(self, key: FileKey, sha256: str, blake3: str | None) -> None:
        self._entries[key.path] = {"size": key.size, "mtime_ns": key.mtime_ns, "inode": key.inode,
                                   "device": key.device, "sha256": sha256, "verified_at": time.time()}
        if blake3:
            self._blake3[sha256] = blake3  # the blake3 of bytes that just matched sha256: replaces any other
        self._dirty = True

    def forget(self, path: Path) -> None:
        with self._lock:
            if self._entries.pop(str(path.absolute()), None) is not None:
                self._dirty = True

    def save(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            data = {"version": CACHE_VERSION, "entries": self._entries, "blake3": self._blake3}
            write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode())
            self._dirty = False

    def save_or_note(self, on_note: Callable[[str], None] | None) -> None:
        """save(); a cache that cannot be written costs a re-hash next time, nothing else: say so and go on."""
        try:
            self.save()
        except OSError as exc:
            if on_note is not None:
                on_note(f"the verification cache {self.path} could not be saved ({exc.strerror or exc}): the "
                        "next run hashes again")
