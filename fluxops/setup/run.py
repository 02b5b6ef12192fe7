"""`fluxops setup`: plan -> preflight -> download -> place, for every file of a manifest.

Files already verified are skipped without a network call (verify + its cache). Missing files get a source
(`fluxops.setup.preflight`), then are fetched into `<models>/.fluxops-partial/` (`fluxops.hub.segments`)
and, once their sha256 matches, fsynced and atomically renamed into `<models>/<folder>/<name>`. A corrupt
file at a destination is only replaced with `repair`, and is moved aside (not deleted) until its
replacement has verified.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from fluxops.errors import FluxopsError
from fluxops.files import fsync_dir
from fluxops.hub.client import Hub, RemoteFile
from fluxops.hub.partial import PARTIAL_DIR, PartPaths, discard, prune_partials, resume_point
from fluxops.hub.rangedget import ByteSource
from fluxops.hub.segments import DownloadStopped, SegmentedDownload
from fluxops.hub.tokens import ResolvedToken
from fluxops.locking import models_lock
from fluxops.models.hashing import FileKey, VerifyCache
from fluxops.models.layout import extra_yamls_for
from fluxops.models.manifest import Manifest, ModelSpec
from fluxops.models.modelsdir import make_models_dir
from fluxops.models.verify import State, verify
from fluxops.settings import Settings
from fluxops.setup.preflight import blocked_destination, check_disk, choose_source, free_bytes
from fluxops.units import human_bytes

CORRUPT = (State.WRONG_SIZE, State.MALFORMED, State.HASH_MISMATCH)


@dataclass(frozen=True)
class SetupOptions:
    dry_run: bool = False
    repair: bool = False
    wait: bool = True
    with_blake3: bool = True


class SetupEvents:
    """What the command layer is told while setup runs (the default ignores everything)."""

    def note(self, text: str) -> None: ...
    def started(self, file_id: str, total: int, done: int) -> None: ...
    def advance(self, file_id: str, n: int) -> None: ...
    def finished(self, outcome: FileOutcome) -> None: ...


@dataclass
class FileOutcome:
    id: str
    dest: str
    size: int
    action: str  # present | download | placed | corrupt | failed
    state: str  # what verify found before setup
    source: str | None = None
    resume_from: int = 0
    fetched: int = 0
    seconds: float = 0.0
    connections: int | None = None
    error: FluxopsError | None = None
    remote: RemoteFile | None = field(default=None, repr=False)

    @property
    def to_fetch(self) -> int:
        return self.size - self.resume_from if self.action == "download" else 0

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "dest": self.dest, "size": self.size, "action": self.action, "state": self.state,
                "source": self.source, "resume_from": self.resume_from, "to_fetch": self.to_fetch,
                "fetched": self.fetched, "seconds": round(self.seconds, 3), "connections": self.connections,
                "error": self.error.to_dict() if self.error else None}


@dataclass
class SetupReport:
    models_dir: str
    dry_run: bool
    files: list[FileOutcome]
    free_bytes: int | None = None
    token: dict[str, object] | None = None

    @property
    def ok(self) -> bool:
        good = ("present", "placed", "download") if self.dry_run else ("present", "placed")
        return all(f.action in good for f in self.files)

    @property
    def to_fetch(self) -> int:
        return sum(f.to_fetch for f in self.files)

    def to_dict(self) -> dict[str, object]:
        return {"models_dir": self.models_dir, "dry_run": self.dry_run, "ok": self.ok,
                "to_fetch": self.to_fetch, "fetched": sum(f.fetched for f in self.files),
                "free_bytes": self.free_bytes, "token": self.token, "files": [f.to_dict() for f in self.files]}


def prune(manifest: Manifest, models_dir: Path, *, wait: bool = False,
          on_wait: Callable[[str], None] = lambda text: None) -> list[tuple[Path, int]]:
    """Partial files no manifest entry needs (kept: every pinned sha256 of this manifest), under setup's lock:
    a setup running with another manifest is writing partials this one does not know."""
    if not (models_dir / PARTIAL_DIR).is_dir():
        return []
    with models_lock(models_dir, wait=wait, on_wait=on_wait):
        return prune_partials(models_dir, {spec.sha256 for spec in manifest.files})


def _plan(manifest: Manifest, models_dir: Path, cache: VerifyCache, settings: Settings, options: SetupOptions,
          events: SetupEvents) -> list[FileOutcome]:
    report = verify(manifest, models_dir, cache, extra_yamls=extra_yamls_for(settings.comfyui_dir),
                    fix=not options.dry_run, parallel_files=settings.parallel_files, on_note=events.note)
    plans = []
    for spec, found in zip(manifest.files, report.files, strict=True):
        outcome = FileOutcome(id=spec.id, dest=spec.dest, size=spec.size, action="present",
                              state=found.state.value)
        if found.state in CORRUPT and not options.repair:
            outcome.action = "corrupt"
            outcome.error = FluxopsError("setup.corrupt_present", f"{found.path}: {found.state.value} "
                                         f"({found.detail}); left as it is")
        elif found.state in CORRUPT or found.state is State.MISSING:
            outcome.action = "download"
            outcome.resume_from = resume_point(models_dir, spec.sha256, spec.size)
            blocked = blocked_destination(spec.dest_path(models_dir))
            if blocked is not None:
                outcome.action, outcome.error = "failed", blocked
        plans.append(outcome)
    return plans


def _preflight(plans: list[FileOutcome], manifest: Manifest, hub: Hub, events: SetupEvents) -> None:
    wanted = [p for p in plans if p.action == "download"]
    if wanted and hub.token:
        _check_token(hub, events)
    for plan in wanted:
        try:
            plan.remote = choose_source(hub, manifest.by_id(plan.id), events.note)
            plan.source = plan.remote.source.repo
        except FluxopsError as exc:
            if exc.code in ("hub.token_invalid", "hub.unreachable"):
                raise
            plan.action, plan.error = "failed", exc


def _check_token(hub: Hub, events: SetupEvents) -> None:
    """A token the Hub refuses stops setup before anything else. The check is advice otherwise: a mirror set in
    HF_ENDPOINT often has no account API (/api/whoami-v2 answers 404), and only the downloads decide."""
    try:
        hub.whoami()
    except FluxopsError as exc:
        if exc.code == "hub.token_invalid":
            raise
        events.note(f"the token was not checked ({exc.message}); the downloads will tell")


def run_setup(settings: Settings, manifest: Manifest, token: ResolvedToken, options: SetupOptions,
              events: SetupEvents, stop: threading.Event | None = None) -> SetupReport:
    models_dir = settings.require_models_dir()
    manifest.require_distinct_sha256()
    cache = VerifyCache(settings.verify_cache_path)
    if not options.dry_run:
        make_models_dir(models_dir)
    lock = (contextlib.nullcontext() if options.dry_run
            else models_lock(models_dir, wait=options.wait, on_wait=events.note))
    with lock:
        plans = _plan(manifest, models_dir, cache, settings, options, events)
        report = SetupReport(str(models_dir), options.dry_run, plans, token=token.to_dict())
        wanted = [p for p in plans if p.action == "download"]
        if not wanted:
            return report
        if settings.hf_offline:
            names = ", ".join(p.dest for p in wanted)
            raise FluxopsError("hub.offline", f"HF_HUB_OFFLINE is set and {len(wanted)} file(s) are missing: {names}")
        hub = Hub(settings.hf_endpoint, token.value)
        _preflight(plans, manifest, hub, events)
        needed = sum(p.to_fetch for p in plans)
        report.free_bytes = free_bytes(models_dir) if options.dry_run else check_disk(models_dir, needed)
        if not options.dry_run:
            _download_all(settings, manifest, hub, [p for p in plans if p.action == "download"], cache, options,
                          events, stop or threading.Event())
        return report


def _download_all(settings: Settings, manifest: Manifest, hub: Hub, plans: list[FileOutcome], cache: VerifyCache,
                  options: SetupOptions, events: SetupEvents, stop: threading.Event) -> None:
    permits = threading.BoundedSemaphore(settings.connections)  # the global cap across files
    models_dir = settings.require_models_dir()
    plans = sorted(plans, key=lambda p: p.size, reverse=True)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(settings.parallel_files, len(plans)))) as pool:
            futures = [pool.submit(_download_one, settings, manifest.by_id(p.id), p, hub, cache, options,
                                   events, permits, stop) for p in plans]
            try:
                pending = set(futures)
                while pending:
                    _, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
            except KeyboardInterrupt:
                stop.set()
                wait(futures)
                kept = sum(resume_point(models_dir, manifest.by_id(p.id).sha256, p.size) for p in plans
                           if p.action != "placed")
                raise FluxopsError("setup.interrupted", f"interrupted: {human_bytes(kept)} kept in "
                                   f"{models_dir / PARTIAL_DIR} for the resume") from None
            for future in futures:
                future.result()
    finally:
        cache.save_or_note(events.note)


def _download_one(settings: Settings, spec: ModelSpec, plan: FileOutcome, hub: Hub, cache: VerifyCache,
                  options: SetupOptions, events: SetupEvents, permits: threading.Semaphore,
                  stop: threading.Event) -> None:
    assert plan.remote is not None
    remote = plan.remote
    models_dir = settings.require_models_dir()
    paths = PartPaths.for_sha(models_dir, spec.sha256)
    source = ByteSource(hub, remote.location, lambda: hub.metadata(remote.source, remote.commit).location,
                        read_timeout=settings.stall_timeout)
    events.started(spec.id, spec.size, plan.resume_from)
    started = time.perf_counter()
    engine = SegmentedDownload(paths=paths, size=spec.size, sha256=spec.sha256, source=source,
                               connections=settings.connections, segment_size=settings.segment_size,
                               permits=permits, stop=stop, on_bytes=lambda n: events.advance(spec.id, n),
                               with_blake3=options.with_blake3,
                               on_note=lambda text: events.note(f"{spec.id}: {text}"),
                               stall_timeout=settings.stall_timeout)
    try:
        fetched = engine.run()
        plan.fetched, plan.resume_from = fetched.fetched_bytes, fetched.resumed_from
        plan.connections = fetched.connections
        _place(spec, paths, models_dir, cache, fetched.blake3)
        cache.save_or_note(events.note)  # now, not at the end: a kill later must not cost a re-hash of this file
        plan.action = "placed"
    except DownloadStopped:
        plan.fetched = engine.fetched_bytes
        return
    except FluxopsError as exc:
        plan.fetched = engine.fetched_bytes
        plan.action, plan.error = "failed", exc
    finally:
        plan.seconds = time.perf_counter() - started
        if not stop.is_set():
            events.finished(plan)


def _place(spec: ModelSpec, paths: PartPaths, models_dir: Path, cache: VerifyCache, blake3: str | None) -> None:
    """Atomic rename into place; a corrupt file already there is moved aside until the new one is in."""
    dest = spec.dest_path(models_dir)
    blocked = blocked_destination(dest)
    if blocked is not None:
        raise blocked
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FluxopsError("download.write_failed", f"cannot create {dest.parent}: {exc.strerror}") from exc
    aside: Path | None = None
    if os.path.lexists(dest):  # a regular file (blocked_destination said so): a corrupt copy under --repair
        aside = paths.part.with_name(f"{spec.sha256}.replaced")
        os.replace(dest, aside)
    try:
        os.replace(paths.part, dest)
    except OSError as exc:
        if aside is not None:
            os.replace(aside, dest)
        raise FluxopsError("download.write_failed", f"cannot move the download into {dest}: {exc.strerror}") \
            from exc
    fsync_dir(dest.parent)
    discard(paths)
    cache.forget(dest)
    cache.record(FileKey.of(dest), spec.sha256, blake3)
    if aside is not None:
        aside.unlink()
