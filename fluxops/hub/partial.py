"""Partial downloads on disk: `<models>/.fluxops-partial/<sha256>.part` and its resume state.

The state file (`<sha256>.state.json`, next to the part) records which byte ranges of the part hold the
bytes that arrived, at two levels: `written` (pwrite returned: in the page cache, which outlives a kill -9
but not a reboot; tagged with the boot id) and `synced` (after an fdatasync of the part: survives a
reboot). A resume in the same boot trusts `written`, after a reboot only `synced`. Ranges, not segment
numbers, are stored, so a changed segment size still resumes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from fluxops.errors import FluxopsError
from fluxops.files import write_atomic
from fluxops.units import human_bytes

PARTIAL_DIR = ".fluxops-partial"  # downloads in progress live here; never mistaken for a placed file
STATE_VERSION = 1
PART_SUFFIX = ".part"
STATE_SUFFIX = ".state.json"


class RangeSet:
    """Sorted, merged half-open byte ranges [start, end)."""

    def __init__(self, ranges: list[tuple[int, int]] | None = None):
        self._ranges: list[tuple[int, int]] = []
        for start, end in ranges or []:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        merged: list[tuple[int, int]] = []
        for a, b in self._ranges:
            if b < start or a > end:
                merged.append((a, b))
            else:
                start, end = min(a, start), max(b, end)
        merged.append((start, end))
        merged.sort()
        self._ranges = merged

    @property
    def covered(self) -> int:
        return sum(b - a for a, b in self._ranges)

    def prefix_end(self) -> int:
        """Where the contiguous run from byte 0 ends."""
        return self._ranges[0][1] if self._ranges and self._ranges[0][0] == 0 else 0

    def missing(self, size: int) -> list[tuple[int, int]]:
        gaps, pos = [], 0
        for a, b in self._ranges:
            if a > pos:
                gaps.append((pos, min(a, size)))
            pos = max(pos, b)
        if pos < size:
            gaps.append((pos, size))
        return [(a, b) for a, b in gaps if b > a]

    def copy(self) -> RangeSet:
        clone = RangeSet()
        clone._ranges = list(self._ranges)
        return clone

    def as_list(self) -> list[list[int]]:
        return [[a, b] for a, b in self._ranges]


@dataclass(frozen=True)
class PartPaths:
    part: Path
    state: Path

    @classmethod
    def for_sha(cls, models_dir: Path, sha256: str) -> PartPaths:
        root = models_dir / PARTIAL_DIR
        return cls(root / f"{sha256}{PART_SUFFIX}", root / f"{sha256}{STATE_SUFFIX}")


def boot_id() -> str | None:
    """This boot's id (Linux). The page cache outlives a killed process but not a reboot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def load_done(paths: PartPaths, size: int) -> RangeSet:
    """The ranges a previous run left on disk; empty when there is no usable state.

    `written` ranges were in the page cache when recorded: still there after a kill -9 in the same boot.
    `synced` ranges were fdatasync'ed: they survive a reboot or power loss too.
    """
    if broken(paths):
        return RangeSet()
    try:
        data = json.loads(paths.state.read_text(encoding="utf-8"))
        part_size = paths.part.stat().st_size
    except (OSError, ValueError):
        return RangeSet()
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION or data.get("size") != size:
        return RangeSet()
    same_boot = data.get("boot_id") is not None and data.get("boot_id") == boot_id()
    # "done": the first state format, written only after an fdatasync (the same trust as "synced").
    raw = data.get("written" if same_boot else "synced", data.get("done")) or []
    try:
        ranges = [(int(a), int(b)) for a, b in raw if 0 <= int(a) < int(b) <= min(size, part_size)]
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(1e999), a state file that lies
        return RangeSet()
    return RangeSet(ranges)


def resume_point(models_dir: Path, sha256: str, size: int) -> int:
    """Bytes already on disk for this file (what a resume will not fetch again)."""
    return load_done(PartPaths.for_sha(models_dir, sha256), size).covered


class Checkpointer:
    """Records progress in the state file: often without a sync (enough after a kill -9), and now and
    then after an fdatasync of the part (enough after a reboot)."""

    def __init__(self, paths: PartPaths, fd: int, size: int, done: RangeSet):
        self.paths, self.fd, self.size = paths, fd, size
        self._lock = threading.Lock()
        self._synced = done.copy()
        self._latest = done.copy()
        self._boot = boot_id()

    def _write(self, durable: bool) -> None:
        data = json.dumps({"version": STATE_VERSION, "size": self.size, "boot_id": self._boot,
                           "written": self._latest.as_list(), "synced": self._synced.as_list()}).encode()
        if durable:
            write_atomic(self.paths.state, data)
            return
        tmp = self.paths.state.with_name(self.paths.state.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.paths.state)

    def record(self, written: RangeSet) -> None:
        """``written``: a snapshot of ranges whose pwrite() returned (in the page cache)."""
        with self._lock:
            if written.covered >= self._latest.covered:
                self._latest = written
            self._write(durable=False)

    def sync(self, written: RangeSet) -> None:
        """``written`` must be snapshotted before this call; records go on while the part is synced."""
        sync = getattr(os, "fdatasync", os.fsync)  # fdatasync: no need to flush the mtime
        sync(self.fd)
        with self._lock:
            self._synced = written
            if written.covered >= self._latest.covered:
                self._latest = written
            self._write(durable=True)

    @property
    def durable_bytes(self) -> int:
        return self._synced.covered


def _not_a_file(path: Path) -> bool:
    try:
        return not stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def broken(paths: PartPaths) -> bool:
    """The part or its state is something other than a regular file (a folder, a link): worth nothing."""
    return _not_a_file(paths.part) or _not_a_file(paths.state)


def discard(paths: PartPaths) -> None:
    """Remove a partial download, whatever its pieces turned into. They live in fluxops's own hidden folder,
    named by a sha256, so even a folder there is fluxops's to remove."""
    for path in (paths.part, paths.state, paths.state.with_name(paths.state.name + ".tmp")):
        discard_path(path)


def discard_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def prune_partials(models_dir: Path, keep_sha256: set[str]) -> list[tuple[Path, int]]:
    """Remove partial files (and their state) that no manifest entry needs. Returns (path, bytes) removed."""
    root = models_dir / PARTIAL_DIR
    removed: list[tuple[Path, int]] = []
    if not root.is_dir():
        return removed
    for path in sorted(root.iterdir()):
        name = path.name
        sha = name.split(".", 1)[0]
        ours = name.endswith((PART_SUFFIX, STATE_SUFFIX, STATE_SUFFIX + ".tmp", ".replaced"))  # not the lock
        if not ours or sha in keep_sha256:
            continue
        size = path.lstat().st_size if not _not_a_file(path) else 0
        discard_path(path)
        removed.append((path, size))
    return removed


def disk_full_error(folder: Path, still_needed: int) -> FluxopsError:
    """setup.disk_full for a write that found the disk full: what is still to write, what is free, and that
    what arrived is kept (the state file is only ever replaced whole, so it stays valid)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = 0
    return FluxopsError("setup.disk_full", f"the disk holding {folder} filled up: {human_bytes(still_needed)} of "
                        f"this file still to write, {human_bytes(free)} free; free at least "
                        f"{human_bytes(max(0, still_needed - free))} there (what arrived is kept for the resume)")
