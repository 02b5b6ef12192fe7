"""Writing files so that a crash, a kill or a second run never leaves a half-written or overwritten file.

- `write_atomic`: readers see the old content or the new, never a mix (state files, caches, reports).
- `write_new`: a file that must not replace anything (images, sidecars): written under a temporary name and
  hard-linked into place, and a link cannot overwrite, so two runs choosing the same name cannot clobber
  each other; the loser gets `FileExistsError` and picks another name.
- `move_no_overwrite`: the same guarantee for moving an existing file, across file systems too.
- `fsync_dir`: make a rename durable (the directory entry, not only the data).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
from pathlib import Path

# Errors that mean "this file system cannot hard-link here" (another device, FAT/exFAT, some network shares).
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename into it survives a power cut (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a small file so readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _hard_link(src: Path, dst: Path) -> bool:
    """Link `src` to `dst`: True when done, False when this file system cannot hard-link; FileExistsError when
    `dst` exists (a link never overwrites)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        return False
    return True


def _link_into_place(tmp: Path, path: Path) -> None:
    """Give the complete file `tmp` the name `path`, never replacing an existing `path`; where the file system
    has no hard links, `path` is created with O_EXCL and filled from `tmp`."""
    if not _hard_link(tmp, path):
        with open(path, "xb") as dst, open(tmp, "rb") as src:  # "x": never replaces an existing file
            shutil.copyfileobj(src, dst, 8 * 1024 * 1024)


def write_new(path: Path, data: bytes) -> None:
    """Create `path` with `data`; raises FileExistsError if it exists, and never leaves a partial `path`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with tmp.open("xb") as fh:  # plain open: the file gets the user's umask, unlike mkstemp's 0600
            fh.write(data)
        _link_into_place(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def move_no_overwrite(src: Path, dst: Path) -> None:
    """Move `src` to `dst`; raises FileExistsError if `dst` exists. Across file systems the copy goes to a
    temporary name beside `dst` first, so `dst` is either absent or complete."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not _hard_link(src, dst):
        tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.fluxops-move")
        try:
            shutil.copyfile(src, tmp)
            _link_into_place(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
    src.unlink()
