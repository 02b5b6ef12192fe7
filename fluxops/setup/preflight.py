"""Checks made before any byte moves: the token, each source's access and metadata, free disk."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from fluxops.errors import FluxopsError
from fluxops.hub.client import Hub, RemoteFile
from fluxops.models.manifest import ModelSpec, Source
from fluxops.units import gib

DISK_MARGIN = 256 * 1024 * 1024  # room for the file system's own needs and anything else writing there


def check_source(hub: Hub, spec: ModelSpec, source: Source) -> RemoteFile:
    """The source's metadata, if it is reachable, allowed and serves the pinned bytes; else FluxopsError."""
    if source.gated:
        _advisory_auth_check(hub, source)
    remote = hub.metadata(source)
    where = f"{source.repo}:{source.path}@{source.revision}"
    if remote.size is not None and remote.size != spec.size:
        raise FluxopsError("hub.upstream_changed", f"{where} is now {remote.size} bytes, the manifest pins "
                           f"{spec.size}: upstream changed, this source is refused")
    if remote.sha256 is not None and remote.sha256 != spec.sha256:
        raise FluxopsError("hub.upstream_changed", f"{where} now has sha256 {remote.sha256}, the manifest "
                           f"pins {spec.sha256}: upstream changed, this source is refused")
    return remote


def _advisory_auth_check(hub: Hub, source: Source) -> None:
    """The licence check says early why a gated source is refused; where the endpoint has no such API (a mirror)
    the metadata request below answers the same question."""
    try:
        hub.auth_check(source)
    except FluxopsError as exc:
        if exc.code in ("hub.gated", "hub.token_invalid", "hub.unreachable", "hub.offline"):
            raise


def choose_source(hub: Hub, spec: ModelSpec, notice: Callable[[str], None]) -> RemoteFile:
    """The first source that works, with a notice for each one passed over."""
    failures: list[FluxopsError] = []
    for i, source in enumerate(spec.sources):
        try:
            return check_source(hub, spec, source)
        except FluxopsError as exc:
            if exc.code in ("hub.token_invalid", "hub.unreachable", "hub.offline"):
                raise  # not about this source: the next one would fail the same way
            failures.append(exc)
            more = "; trying the next source" if i + 1 < len(spec.sources) else ""
            notice(f"{spec.id}: {exc.message}{more}")
    reasons = "; ".join(f.message for f in failures)
    first_hint = next((f.hint for f in failures if f.hint), None)
    raise FluxopsError("setup.no_source", f"{spec.id}: no source can serve {spec.dest} ({reasons})",
                       hint=first_hint)


def existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def free_bytes(models_dir: Path) -> int:
    return shutil.disk_usage(existing_parent(models_dir)).free


def check_disk(models_dir: Path, needed: int) -> int:
    """Free bytes at the destination; raises setup.disk_full when `needed` + margin do not fit."""
    free = free_bytes(models_dir)
    if needed and free < needed + DISK_MARGIN:
        raise FluxopsError("setup.disk_full", f"{models_dir} has {gib(free)} free; the download "
                           f"needs {gib(needed)} plus {gib(DISK_MARGIN)} of margin; nothing "
                           "was downloaded")
    return free


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symlink"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISFIFO, "a named pipe"), (stat.S_ISBLK, "a device"), (stat.S_ISCHR, "a device"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def blocked_destination(dest: Path) -> FluxopsError | None:
    """Why setup must not place a file at `dest`: its folder is no folder, or `dest` is something other than a
    regular file (a folder, a symlink, a socket). Such things are the user's: never moved, never deleted."""
    try:
        if not stat.S_ISDIR(os.stat(dest.parent).st_mode):
            return FluxopsError("setup.dest_blocked", f"{dest.parent} is not a folder; {dest.name} cannot go there")
    except FileNotFoundError:
        if os.path.lexists(dest.parent):
            return FluxopsError("setup.dest_blocked", f"{dest.parent} is a symlink to nothing; "
                                f"{dest.name} cannot go there")
        return None  # created when the file is placed
    except OSError as exc:
        return FluxopsError("setup.dest_blocked", f"{dest.parent} cannot be used as a folder "
                            f"({exc.strerror}); {dest.name} cannot go there")
    try:
        mode = dest.lstat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return FluxopsError("setup.dest_blocked", f"{dest} cannot be examined ({exc.strerror})")
    if stat.S_ISREG(mode):
        return None
    return FluxopsError("setup.dest_blocked", f"{dest} is {_kind(mode)}, where the model file belongs; "
                        "left as it is")
