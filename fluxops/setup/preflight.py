"""Checks made before any byte moves: the token, each source's access and metadata, free disk."""

from __future__ import annotations

import shutil
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
        hub.auth_check(source)
    remote = hub.metadata(source)
    where = f"{source.repo}:{source.path}@{source.revision}"
    if remote.size is not None and remote.size != spec.size:
        raise FluxopsError("hub.upstream_changed", f"{where} is now {remote.size} bytes, the manifest pins "
                           f"{spec.size}: upstream changed, this source is refused")
    if remote.sha256 is not None and remote.sha256 != spec.sha256:
        raise FluxopsError("hub.upstream_changed", f"{where} now has sha256 {remote.sha256}, the manifest "
                           f"pins {spec.sha256}: upstream changed, this source is refused")
    return remote


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
