"""Check that every manifest file is present, in a place ComfyUI looks, well-formed and the right bytes.

Per file: locate it (destination, ComfyUI's aliases, extra_model_paths.yaml folders), compare the size,
check the safetensors header, then hash. A verdict is cached; an unchanged file costs one stat next time.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path

from fluxops.errors import FluxopsError
from fluxops.files import move_no_overwrite
from fluxops.hub.partial import PARTIAL_DIR
from fluxops.models.hashing import FileKey, ProgressFn, VerifyCache, blake3_file, hash_file
from fluxops.models.layout import locate, right_places, search_paths
from fluxops.models.manifest import Manifest, ModelSpec
from fluxops.models.tensorfile import NotSafetensors, read_summary

MAX_WALK_DEPTH = 4


class State(str, Enum):
    OK = "ok"
    MISSING = "missing"
    MISPLACED = "misplaced"
    WRONG_SIZE = "wrong_size"
    MALFORMED = "malformed"
    HASH_MISMATCH = "hash_mismatch"


HINTS = {
    State.OK: None,
    State.MISSING: "fluxops setup",
    State.MISPLACED: "fluxops verify --fix",
    State.WRONG_SIZE: "fluxops setup --repair",
    State.MALFORMED: "fluxops setup --repair",
    State.HASH_MISMATCH: "fluxops setup --repair",
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


@dataclass
class _Job:
    spec: ModelSpec
    path: Path
    key: FileKey
    result: FileResult
    use_blake3: str | None  # the recorded blake3 to compare against, or None for a sha256 check


def _walk(roots: Iterable[Path]) -> dict[str, list[Path]]:
    """Every file under the roots by basename (bounded depth; partial downloads skipped)."""
    index: dict[str, list[Path]] = {}
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir() or root in seen:
            continue
        seen.add(root)
        base_depth = len(root.parts)
        for dirpath, dirnames, filenames in os.walk(root):
            current = Path(dirpath)
            dirnames[:] = [d for d in dirnames if d != PARTIAL_DIR and not d.startswith(".")]
            if len(current.parts) - base_depth >= MAX_WALK_DEPTH:
                dirnames[:] = []
            for name in filenames:
                index.setdefault(name, []).append(current / name)
    return index


def _move_no_overwrite(src: Path, dst: Path) -> None:
    try:
        move_no_overwrite(src, dst)
    except FileExistsError as exc:
        raise FluxopsError("verify.fix_blocked", f"{dst} already exists; not overwriting it") from exc
    except OSError as exc:
        raise FluxopsError("verify.fix_blocked", f"cannot move {src} to {dst}: {exc.strerror or exc}") from exc


def verify(manifest: Manifest, models_dir: Path, cache: VerifyCache, *, extra_yamls: Iterable[Path] = (),
           full: bool = False, fix: bool = False, jobs: int = 3,
           on_total: Callable[[int], None] | None = None, on_progress: ProgressFn | None = None) -> VerifyReport:
    started = time.perf_counter()
    paths = search_paths(models_dir, extra_yamls)
    results: dict[str, FileResult] = {}
    hash_jobs: list[_Job] = []
    index: dict[str, list[Path]] | None = None

    for spec in manifest.files:
        base = FileResult(id=spec.id, dest=spec.dest, state=State.MISSING,
                          path=str(spec.dest_path(models_dir)), expected_size=spec.size)
        found = locate(spec, paths, models_dir)
        misplaced = False
        if found is None:
            if index is None:
                index = _walk([models_dir, *{sp.path for sp in paths if sp.origin not in ("models", "alias")}])
            names = {spec.filename, *(Path(s.path).name for s in spec.sources)}
            right = {p for p, _ in right_places(spec, paths, models_dir)}
            candidates = [p for name in sorted(names) for p in index.get(name, [])
                          if p not in right and p.stat().st_size == spec.size]
            if not candidates:
                results[spec.id] = base
                continue
            found, misplaced = (candidates[0], "misplaced"), True
        path, origin = found
        st = path.stat()
        result = replace(base, path=str(path), actual_size=st.st_size, location=origin)
        if st.st_size != spec.size:
            results[spec.id] = replace(result, state=State.WRONG_SIZE, checked_by="size",
                                       detail=f"{st.st_size} bytes, expected {spec.size}")
            continue
        key = FileKey.of(path, st)
        if not full and cache.lookup(key, spec.sha256) is not None:
            results[spec.id] = replace(result, state=State.MISPLACED if misplaced else State.OK, checked_by="cache")
            continue
        try:
            read_summary(path)
        except NotSafetensors as exc:
            results[spec.id] = replace(result, state=State.MALFORMED, checked_by="header", detail=str(exc))
            cache.forget(path)
            continue
        except OSError as exc:
            results[spec.id] = replace(result, state=State.MALFORMED, checked_by="header",
                                       detail=f"cannot read: {exc.strerror}")
            continue
        if misplaced:
            result = replace(result, state=State.MISPLACED)
        hash_jobs.append(_Job(spec, path, key, result, cache.blake3_for(spec.sha256) if full else None))

    if on_total is not None:
        on_total(sum(job.spec.size for job in hash_jobs))

    def run(job: _Job) -> FileResult:
        if job.use_blake3 is not None:
            digest = blake3_file(job.path, on_progress)
            if digest == job.use_blake3:
                cache.record(job.key, job.spec.sha256, digest)
                return replace(job.result, state=job.result.state if job.result.state is State.MISPLACED
                               else State.OK, checked_by="blake3")
            cache.forget(job.path)
            return replace(job.result, state=State.HASH_MISMATCH, checked_by="blake3",
                           detail="blake3 differs from the copy that matched sha256 earlier: the file changed")
        digests = hash_file(job.path, on_progress=on_progress)
        if digests.sha256 != job.spec.sha256:
            cache.forget(job.path)
            if job.result.state is State.MISPLACED:  # same name and size, other bytes: not our file
                return replace(job.result, state=State.MISSING, path=str(job.spec.dest_path(models_dir)),
                               checked_by="sha256",
                               detail=f"{job.path} has the right name and size but other bytes")
            return replace(job.result, state=State.HASH_MISMATCH, checked_by="sha256",
                           detail=f"sha256 {digests.sha256}, expected {job.spec.sha256}")
        cache.record(job.key, job.spec.sha256, digests.blake3)
        return replace(job.result, state=job.result.state if job.result.state is State.MISPLACED else State.OK,
                       checked_by="sha256")

    hash_jobs.sort(key=lambda j: j.spec.size, reverse=True)  # biggest first: best parallel finish
    try:
        if hash_jobs:
            with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(hash_jobs)))) as pool:
                for job, res in zip(hash_jobs, pool.map(run, hash_jobs), strict=True):
                    results[job.spec.id] = res
        if fix:
            for spec in manifest.files:
                res = results[spec.id]
                if res.state is State.MISPLACED and res.path:
                    dest = spec.dest_path(models_dir)
                    _move_no_overwrite(Path(res.path), dest)
                    cache.forget(Path(res.path))
                    cache.record(FileKey.of(dest), spec.sha256, cache.blake3_for(spec.sha256))
                    results[spec.id] = replace(res, state=State.OK, path=str(dest), location="models", fixed=True,
                                               detail=f"moved from {res.path}")
    finally:
        with contextlib.suppress(OSError):
            cache.save()
    ordered = tuple(results[spec.id] for spec in manifest.files)
    return VerifyReport(manifest=str(manifest.path), models_dir=str(models_dir), files=ordered,
                        seconds=time.perf_counter() - started)
