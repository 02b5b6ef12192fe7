"""Where a manifest file is on disk: the places ComfyUI looks for it, or anywhere else under the models folders.

Every path found is stat()ed once, and a path that cannot be stat()ed as a regular file (absent, a directory,
a dangling symlink, a symlink loop, no permission) is simply not a file here: nothing in a models folder can
make locating raise. `fluxops verify` and doctor's models check both locate through this module.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fluxops.errors import FluxopsError
from fluxops.models.layout import SearchPath, extra_yamls_for, search_paths
from fluxops.models.manifest import Manifest, ModelSpec

MAX_WALK_DEPTH = 4
MISPLACED = "misplaced"  # the origin of a file found outside the places ComfyUI looks for it


@dataclass(frozen=True)
class Found:
    path: Path
    stat: os.stat_result
    origin: str  # "models", "alias", the yaml file whose folder holds it, or MISPLACED

    @property
    def size(self) -> int:
        return self.stat.st_size

    @property
    def misplaced(self) -> bool:
        return self.origin == MISPLACED


def stat_file(path: Path) -> os.stat_result | None:
    """The stat of a regular file (symlinks followed); None for anything else."""
    try:
        st = path.stat()
    except OSError:  # absent, dangling or looping symlink, unreadable folder, name too long
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def right_places(spec: ModelSpec, paths: Iterable[SearchPath], models_dir: Path) -> list[tuple[Path, str]]:
    """Where ComfyUI would load the file from, in its search order: the destination first."""
    dest = spec.dest_path(models_dir)
    places = [(dest, "models")]
    for sp in paths:
        candidate = sp.path / spec.filename
        if sp.folder == spec.folder and candidate != dest:
            places.append((candidate, sp.origin))
    return places


def locate(spec: ModelSpec, paths: Iterable[SearchPath], models_dir: Path) -> Found | None:
    """The first place ComfyUI looks that holds a regular file of the spec's name, whatever its size."""
    for place, origin in right_places(spec, paths, models_dir):
        st = stat_file(place)
        if st is not None:
            return Found(place, st, origin)
    return None


def comfyui_search_paths(models_dir: Path, comfyui_dir: Path | None) -> tuple[list[SearchPath], str | None]:
    """The places a ComfyUI with this models dir searches, and why its extra_model_paths.yaml was left out when
    it cannot be read (then only the models dir is searched)."""
    try:
        return search_paths(models_dir, extra_yamls_for(comfyui_dir)), None
    except FluxopsError as exc:
        return search_paths(models_dir, ()), exc.message


def found_paths(manifest: Manifest, models_dir: Path | None, comfyui_dir: Path | None) -> dict[str, Path]:
    """Where each manifest file is, among the places ComfyUI looks (whatever its size; files found nowhere are
    left out): what the VRAM budget reads the tensor sizes from."""
    if models_dir is None:
        return {}
    paths, _why_no_yaml = comfyui_search_paths(models_dir, comfyui_dir)
    hits = {spec.id: locate(spec, paths, models_dir) for spec in manifest.files}
    return {file_id: hit.path for file_id, hit in hits.items() if hit is not None}


class FileIndex:
    """Every file under the models dir and the yaml folders, by basename; walked on first use only."""

    def __init__(self, models_dir: Path, paths: Iterable[SearchPath]):
        self._roots = [models_dir, *{sp.path for sp in paths if sp.origin not in ("models", "alias")}]
        self._index: dict[str, list[Path]] | None = None

    def _walk(self) -> dict[str, list[Path]]:
        """Bounded depth; hidden folders and partial downloads skipped; unreadable folders passed over."""
        index: dict[str, list[Path]] = {}
        seen: set[Path] = set()
        for root in self._roots:
            if not root.is_dir() or root in seen:
                continue
            seen.add(root)
            base_depth = len(root.parts)
            for dirpath, dirnames, filenames in os.walk(root):  # symlinked folders are listed, not entered
                current = Path(dirpath)
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # hidden: .fluxops-partial and the like
                if len(current.parts) - base_depth >= MAX_WALK_DEPTH:
                    dirnames[:] = []
                for name in filenames:
                    index.setdefault(name, []).append(current / name)
        return index

    def named(self, name: str) -> list[Path]:
        if self._index is None:
            self._index = self._walk()
        return self._index.get(name, [])


def find_misplaced(spec: ModelSpec, index: FileIndex, paths: Iterable[SearchPath], models_dir: Path) -> Found | None:
    """A file of the spec's size under its own name or a source's name, somewhere ComfyUI does not look."""
    right = {place for place, _ in right_places(spec, paths, models_dir)}
    names = sorted({spec.filename, *(Path(s.path).name for s in spec.sources)})
    for name in names:
        for path in index.named(name):
            st = stat_file(path) if path not in right else None
            if st is not None and st.st_size == spec.size:
                return Found(path, st, MISPLACED)
    return None
