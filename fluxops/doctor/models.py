"""The model files as doctor sees them: located and sized with one stat each, judged by the verify cache.

Doctor stays fast and read-only: it never hashes. A file whose cached `fluxops verify` verdict still holds
(same path, size, mtime, inode, device and expected sha256) is ok; a present file without one is
"unverified" (run `fluxops verify`); the rest is missing or the wrong size. Bytes an interrupted
`fluxops setup` already holds in `<models>/.fluxops-partial/` do not count as still to download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fluxops.hub.partial import resume_point
from fluxops.models.hashing import FileKey, VerifyCache
from fluxops.models.layout import SearchPath, comfyui_search_paths, right_places
from fluxops.models.manifest import Manifest, ModelSpec
from fluxops.settings import Settings


@dataclass(frozen=True)
class ModelFile:
    id: str
    dest: str
    state: str  # "ok", "unverified", "missing", "wrong_size"
    path: str | None
    expected_size: int
    actual_size: int | None = None
    verified_at: float | None = None
    partial_bytes: int = 0  # already fetched by an interrupted `fluxops setup` (it resumes from there)

    @property
    def bytes_to_download(self) -> int:
        return 0 if self.state in ("ok", "unverified") else self.expected_size - self.partial_bytes


@dataclass(frozen=True)
class ModelScan:
    models_dir: Path
    files: tuple[ModelFile, ...]
    error: str | None = None  # e.g. a broken extra_model_paths.yaml (then only the models dir is searched)

    @property
    def bytes_to_download(self) -> int:
        return sum(f.bytes_to_download for f in self.files)

    def found_paths(self) -> dict[str, Path]:
        return {f.id: Path(f.path) for f in self.files if f.path and f.state != "missing"}


def _places(spec: ModelSpec, paths: list[SearchPath], models_dir: Path) -> list[Path]:
    return [path for path, _origin in right_places(spec, paths, models_dir)]


def _scan_one(spec: ModelSpec, places: list[Path], cache: VerifyCache, models_dir: Path) -> ModelFile:
    for path in places:
        try:
            st = path.stat()
        except OSError:
            continue
        if not path.is_file():
            continue
        if st.st_size != spec.size:
            return ModelFile(spec.id, spec.dest, "wrong_size", str(path), spec.size, st.st_size)
        verified = cache.lookup(FileKey.of(path, st), spec.sha256)
        state = "ok" if verified is not None else "unverified"
        return ModelFile(spec.id, spec.dest, state, str(path), spec.size, st.st_size, verified)
    partial = resume_point(models_dir, spec.sha256, spec.size)
    return ModelFile(spec.id, spec.dest, "missing", None, spec.size, partial_bytes=partial)


def scan_models(manifest: Manifest, settings: Settings) -> ModelScan:
    models_dir = settings.require_models_dir()
    cache = VerifyCache(settings.verify_cache_path)
    paths, error = comfyui_search_paths(models_dir, settings.comfyui_dir)
    files = tuple(_scan_one(spec, _places(spec, paths, models_dir), cache, models_dir) for spec in manifest.files)
    return ModelScan(models_dir, files, error)
