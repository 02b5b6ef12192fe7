"""Check that every manifest file is present, in a place ComfyUI looks, well-formed and the right bytes.

Per file, in steps: locate it (destination, ComfyUI's aliases, extra_model_paths.yaml folders, else anywhere
under the models folders: misplaced), compare the size and look up the cached verdict, check the safetensors
header, then hash (in parallel, biggest first); last, `fix` moves misplaced files into place. A verdict is
cached; an unchanged file costs one stat next time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path

from fluxops.errors import FluxopsError
from fluxops.files import move_no_overwrite
from fluxops.models.hashing import FileKey, ProgressFn, VerifyCache, blake3_file, hash_file
from fluxops.models.layout import search_paths
from fluxops.models.locate import FileIndex, Found, find_misplaced, locate
from fluxops.models.manifest import Manifest, ModelSpec
from fluxops.models.tensorfile import NotSafetensors, read_summary


class State(str, Enum):
    OK = "ok"
    MISSING = "missing"
    MISPLACED = "misplaced"
    WRONG_SIZE = "wrong_size"
    MALFORMED = "malformed"
    HASH_MISMATCH = "hash_mismatch"
    UNVERIFIED = "unverified"  # present at the right size, bytes not looked at: doctor's quick look only


HINTS = {
    State.OK: None,
    State.MISSING: "fluxops setup",
    State.MISPLACED: "fluxops verify --fix",
    State.WRONG_SIZE: "fluxops setup --repair",
    State.MALFORMED: "fluxops setup --repair",
    State.HASH_MISMATCH: "fluxops setup --repair",
    State.UNVERIFIED: "fluxops verify",
}


@dataclass(frozen=True)
class FileResult:
    id: str
    dest: str  # relative to the models dir
    state: State
    path: str | None  # where the file was found (or is expected, when missing)
    expected_size: int
    actual_size: int | None = None
    location: str | None = None  # "models", "alias", or the yaml file whose folder holds it
    checked_by: str | None = None  # "cache", "sha256", "blake3", "size", "header"
    detail: str = ""
    fixed: bool = False

    @property
    def hint(self) -> str | None:
        return HINTS[self.state]

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["state"] = self.state.value
        data["hint"] = self.hint
        return data


@dataclass(frozen=True)
class VerifyReport:
    manifest: str
    models_dir: str
    files: tuple[FileResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(f.state is State.OK for f in self.files)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.state.value] = counts.get(f.state.value, 0) + 1
        return counts

    def to_dict(self) -> dict[str, object]:
        return {"manifest": self.manifest, "models_dir": self.models_dir, "ok": self.ok,
                "counts": self.counts(), "seconds": round(self.seconds, 3),
                "files": [f.to_dict() for f in self.files]}


@dataclass(frozen=True)
class _HashJob:
    spec: ModelSpec
    found: Found
    result: FileResult  # what the earlier steps found, with the state a matching hash confirms
    recorded_blake3: str | None  # compare against this (a full re-check), or None for a sha256 check


def _size_and_cache(spec: ModelSpec, found: Found, result: FileResult, cache: VerifyCache,
                    full: bool) -> FileResult | None:
    """A verdict from the size alone, or from the cache; None when the bytes must be looked at."""
    if found.size != spec.size:
        return replace(result, state=State.WRONG_SIZE, checked_by="size",
                       detail=f"{found.size} bytes, expected {spec.size}")
    if not full and cache.lookup(FileKey.of(found.path, found.stat), spec.sha256) is not None:
        return replace(result, checked_by="cache")
    return None


def _header(found: Found, result: FileResult, cache: VerifyCache) -> FileResult | None:
    """MALFORMED when the file is not a well-formed safetensors file; None when it is."""
    try:
        read_summary(found.path)
    except NotSafetensors as exc:
        cache.forget(found.path)
        return replace(result, state=State.MALFORMED, checked_by="header", detail=str(exc))
    except OSError as exc:
        return replace(result, state=State.MALFORMED, checked_by="header", detail=f"cannot read: {exc.strerror}")
    return None


def _missing(spec: ModelSpec, models_dir: Path) -> FileResult:
    return FileResult(id=spec.id, dest=spec.dest, state=State.MISSING, path=str(spec.dest_path(models_dir)),
                      expected_size=spec.size)


def _examine(spec: ModelSpec, found: Found, cache: VerifyCache, full: bool,
             models_dir: Path) -> FileResult | _HashJob:
    """Everything short of hashing: a verdict, or the hash job that gives one."""
    result = replace(_missing(spec, models_dir), path=str(found.path), actual_size=found.size, location=found.origin,
                     state=State.MISPLACED if found.misplaced else State.OK)
    verdict = _size_and_cache(spec, found, result, cache, full) or _header(found, result, cache)
    if verdict is not None:
        return verdict
    return _HashJob(spec, found, result, cache.blake3_for(spec.sha256) if full else None)


def _hash(job: _HashJob, cache: VerifyCache, models_dir: Path, on_progress: ProgressFn | None) -> FileResult:
    """The verdict from the bytes: blake3 against the recorded one, else sha256 against the pin."""
    path, spec, result = job.found.path, job.spec, job.result
    key = FileKey.of(path, job.found.stat)
    try:
        if job.recorded_blake3 is not None and blake3_file(path, on_progress) == job.recorded_blake3:
            cache.record(key, spec.sha256, job.recorded_blake3)
            return replace(result, checked_by="blake3")
        # No blake3 on record, or one that differs: the pin is sha256, and only sha256 decides (a wrong blake3
        # in the cache, from a bug or a hand edit, must never condemn good bytes). The fresh blake3 replaces it.
        digests = hash_file(path, on_progress=on_progress)
    except OSError as exc:  # removed or unreadable since it was found
        return replace(result, state=State.MALFORMED, checked_by="blake3" if job.recorded_blake3 else "sha256",
                       detail=f"cannot read: {exc.strerror}")
    if digests.sha256 == spec.sha256:
        cache.record(key, spec.sha256, digests.blake3)
        return replace(result, checked_by="sha256")
    cache.forget(path)
    if job.found.misplaced:  # same name and size, other bytes: not our file
        return replace(result, state=State.MISSING, path=str(spec.dest_path(models_dir)), checked_by="sha256",
                       detail=f"{path} has the right name and size but other bytes")
    return replace(result, state=State.HASH_MISMATCH, checked_by="sha256",
                   detail=f"sha256 {digests.sha256}, expected {spec.sha256}")


def _hash_all(jobs: list[_HashJob], cache: VerifyCache, models_dir: Path, parallel_files: int,
              on_progress: ProgressFn | None) -> dict[str, FileResult]:
    jobs = sorted(jobs, key=lambda j: j.spec.size, reverse=True)  # biggest first: best parallel finish
    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel_files, len(jobs)))) as pool:
        verdicts = pool.map(lambda job: _hash(job, cache, models_dir, on_progress), jobs)
        return {job.spec.id: verdict for job, verdict in zip(jobs, verdicts, strict=True)}


def _move_no_overwrite(src: Path, dst: Path) -> None:
    try:
        move_no_overwrite(src, dst)
    except FileExistsError as exc:
        raise FluxopsError("verify.fix_blocked", f"{dst} already exists; not overwriting it") from exc
    except OSError as exc:
        raise FluxopsError("verify.fix_blocked", f"cannot move {src} to {dst}: {exc.strerror or exc}") from exc


def _fix(spec: ModelSpec, result: FileResult, models_dir: Path, cache: VerifyCache) -> FileResult:
    """Move a verified misplaced file to its destination (never overwriting) and carry its verdict along."""
    if result.state is not State.MISPLACED or not result.path:
        return result
    src, dest = Path(result.path), spec.dest_path(models_dir)
    _move_no_overwrite(src, dest)
    cache.forget(src)
    cache.record(FileKey.of(dest), spec.sha256, cache.blake3_for(spec.sha256))
    return replace(result, state=State.OK, path=str(dest), location="models", fixed=True,
                   detail=f"moved from {src}")


def verify(manifest: Manifest, models_dir: Path, cache: VerifyCache, *, extra_yamls: Iterable[Path] = (),
           full: bool = False, fix: bool = False, parallel_files: int = 3,
           on_total: Callable[[int], None] | None = None, on_progress: ProgressFn | None = None,
           on_note: Callable[[str], None] | None = None) -> VerifyReport:
    started = time.perf_counter()
    paths = search_paths(models_dir, extra_yamls)
    index = FileIndex(models_dir, paths)
    results: dict[str, FileResult] = {}
    jobs: list[_HashJob] = []
    for spec in manifest.files:
        found = locate(spec, paths, models_dir) or find_misplaced(spec, index, paths, models_dir)
        step = _missing(spec, models_dir) if found is None else _examine(spec, found, cache, full, models_dir)
        if isinstance(step, _HashJob):
            jobs.append(step)
        else:
            results[spec.id] = step
    if on_total is not None:
        on_total(sum(job.spec.size for job in jobs))
    try:
        results.update(_hash_all(jobs, cache, models_dir, parallel_files, on_progress))
        if fix:
            for spec in manifest.files:
                results[spec.id] = _fix(spec, results[spec.id], models_dir, cache)
    finally:
        cache.save_or_note(on_note)
    ordered = tuple(results[spec.id] for spec in manifest.files)
    return VerifyReport(manifest=str(manifest.path), models_dir=str(models_dir), files=ordered,
                        seconds=time.perf_counter() - started)
