"""The model files as doctor sees them, and the `models` check.

Doctor stays fast and read-only: it never hashes. Each file is located the way `fluxops verify` locates it
(`fluxops.models.locate`: one stat, a broken symlink is simply not a file) and judged by the verify cache: a
file whose cached verdict still holds (same path, size, mtime, inode, device and expected sha256) is OK; a
present file without one is UNVERIFIED (run `fluxops verify`); the rest is MISSING or WRONG_SIZE. Bytes an
interrupted `fluxops setup` already holds in `<models>/.fluxops-partial/` do not count as still to download.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxops.doctor.result import CheckResult, fail, ok, skip, warn
from fluxops.errors import FluxopsError
from fluxops.hub.partial import resume_point
from fluxops.models.hashing import FileKey, VerifyCache
from fluxops.models.layout import SearchPath
from fluxops.models.locate import comfyui_search_paths, locate
from fluxops.models.manifest import Manifest, ModelSpec
from fluxops.models.verify import State
from fluxops.settings import Settings

if TYPE_CHECKING:  # the context builds its model scan from this module; the check only reads the context
    from fluxops.doctor.context import DoctorContext

TO_DOWNLOAD = (State.MISSING, State.WRONG_SIZE)


@dataclass(frozen=True)
class ModelFile:
    id: str
    dest: str
    state: State  # OK, UNVERIFIED, MISSING or WRONG_SIZE
    path: str | None
    expected_size: int
    actual_size: int | None = None
    verified_at: float | None = None
    partial_bytes: int = 0  # already fetched by an interrupted `fluxops setup` (it resumes from there)

    @property
    def bytes_to_download(self) -> int:
        return self.expected_size - self.partial_bytes if self.state in TO_DOWNLOAD else 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}


@dataclass(frozen=True)
class ModelScan:
    models_dir: Path
    files: tuple[ModelFile, ...]
    error: str | None = None  # e.g. a broken extra_model_paths.yaml (then only the models dir is searched)

    @property
    def bytes_to_download(self) -> int:
        return sum(f.bytes_to_download for f in self.files)

    def found_paths(self) -> dict[str, Path]:
        return {f.id: Path(f.path) for f in self.files if f.path and f.state is not State.MISSING}


def _scan_one(spec: ModelSpec, paths: list[SearchPath], cache: VerifyCache, models_dir: Path) -> ModelFile:
    found = locate(spec, paths, models_dir)
    if found is None:
        partial = resume_point(models_dir, spec.sha256, spec.size)
        return ModelFile(spec.id, spec.dest, State.MISSING, None, spec.size, partial_bytes=partial)
    if found.size != spec.size:
        return ModelFile(spec.id, spec.dest, State.WRONG_SIZE, str(found.path), spec.size, found.size)
    verified = cache.lookup(FileKey.of(found.path, found.stat), spec.sha256)
    state = State.OK if verified is not None else State.UNVERIFIED
    return ModelFile(spec.id, spec.dest, state, str(found.path), spec.size, found.size, verified)


def scan_models(manifest: Manifest, settings: Settings) -> ModelScan:
    models_dir = settings.require_models_dir()
    cache = VerifyCache(settings.verify_cache_path)
    paths, error = comfyui_search_paths(models_dir, settings.comfyui_dir)
    return ModelScan(models_dir, tuple(_scan_one(spec, paths, cache, models_dir) for spec in manifest.files), error)


_STATE_WORDS = {
    State.OK: "verified",
    State.UNVERIFIED: "present, not verified yet",
    State.MISSING: "missing",
    State.WRONG_SIZE: "wrong size",
}


def _detail(f: ModelFile) -> str:
    sizes = f" ({f.actual_size} bytes, expected {f.expected_size})" if f.state is State.WRONG_SIZE else ""
    return f"{f.dest}: {_STATE_WORDS[f.state]}{sizes}"


def check_models(ctx: DoctorContext) -> CheckResult:
    try:
        _ = ctx.manifest  # raises its load error when it cannot be used
    except FluxopsError as exc:
        return fail("models", f"the manifest cannot be used: {exc.message}", exc.hint or "check --manifest")
    if ctx.settings.models_dir is None:
        return skip("models", "no models folder configured",
                    "pass --models-dir DIR or --comfyui-dir DIR (no ComfyUI yet: `fluxops comfy install`)")
    ctx.settings.require_models_dir()  # raises (and the check fails) when it is not a directory
    scan = ctx.models
    assert scan is not None  # the manifest loaded and the models dir is a directory
    files = scan.files
    details = [_detail(f) for f in files]
    if scan.error:
        details.append(f"extra_model_paths.yaml ignored: {scan.error}")
    facts = {
        "models_dir": str(scan.models_dir),
        "bytes_to_download": scan.bytes_to_download,
        "files": [f.to_dict() for f in files],
    }
    bad = [f for f in files if f.state in TO_DOWNLOAD]
    if bad:
        fix = "fluxops setup --repair" if any(f.state is State.WRONG_SIZE for f in bad) else "fluxops setup"
        return fail(
            "models",
            f"{len(bad)} of {len(files)} model files missing or wrong: {', '.join(f.dest for f in bad)}",
            fix,
            details,
            **facts,
        )
    unverified = sum(f.state is State.UNVERIFIED for f in files)
    if unverified:
        return warn(
            "models",
            f"all {len(files)} model files present, {unverified} not verified yet",
            "fluxops verify",
            details,
            **facts,
        )
    return ok("models", f"all {len(files)} model files present and verified (cached verdicts)", details, **facts)
