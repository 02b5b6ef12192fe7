"""Load and validate a model manifest (TOML) into ModelSpec objects. Format: docs/manifest.md."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from fluxops.errors import FluxopsError
from fluxops.models.layout import ALIASES, FOLDERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA = 1
SAFE_EXTENSIONS = (".safetensors", ".sft")
MAX_NAME_BYTES = 255  # NAME_MAX of ext4, xfs, btrfs, NTFS (in UTF-16 units there; bytes is the stricter bound)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")

_TOP_KEYS = {"schema": True, "name": True, "description": False, "comfyui": False, "file": True}
_COMFYUI_KEYS = {"url": True, "tag": True, "commit": True, "python": False}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_FILE_KEYS = {"id": True, "folder": True, "filename": True, "size": True, "sha256": True, "source": True,
              "license": False, "description": False}
_SOURCE_KEYS = {"repo": True, "path": True, "revision": False, "gated": False}


@dataclass(frozen=True)
class Source:
    repo: str
    path: str
    revision: str = "main"
    gated: bool = False

    @property
    def page(self) -> str:
        return f"https://huggingface.co/{self.repo}"


@dataclass(frozen=True)
class ModelSpec:
    id: str  # the role a workflow refers to, e.g. "diffusion_model"
    folder: str  # canonical ComfyUI folder
    filename: str  # final name inside the folder
    size: int
    sha256: str
    sources: tuple[Source, ...]
    license: str = ""
    description: str = ""

    @property
    def dest(self) -> str:
        """The destination relative to the models dir, e.g. ``vae/ae.safetensors``."""
        return f"{self.folder}/{self.filename}"

    def dest_path(self, models_dir: Path) -> Path:
        return models_dir / self.folder / self.filename


@dataclass(frozen=True)
class ComfyPin:
    """The ComfyUI release `fluxops comfy install` installs: a git tag that must resolve to this commit (pinned
    the way a model file is pinned by its sha256)."""

    url: str
    tag: str
    commit: str
    python: str = ">=3.9"  # ComfyUI's own requires-python, as a PEP 440 specifier

    @property
    def short(self) -> str:
        return f"{self.tag} ({self.commit[:12]})"


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    description: str
    files: tuple[ModelSpec, ...]
    comfyui: ComfyPin | None = None

    def require_comfyui(self) -> ComfyPin:
        if self.comfyui is None:
            raise FluxopsError("manifest.invalid", f"{self.path}: no [comfyui] table: it names the ComfyUI release "
                               "(url, tag, commit) that `fluxops comfy install` installs")
        return self.comfyui

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def require_distinct_sha256(self) -> None:
        """What `fluxops setup` needs: a download is keyed by its sha256 (one partial each), so two entries with
        the same bytes would race on one partial. Checked by setup only: to verify, such entries are harmless."""
        seen: dict[str, str] = {}
        for spec in self.files:
            if spec.sha256 in seen:
                raise FluxopsError("manifest.invalid", f"{self.path}: file ({spec.id}).sha256: same sha256 as "
                                   f"entry {seen[spec.sha256]!r}: the same bytes at two destinations; keep one "
                                   "entry (ComfyUI finds a file through extra_model_paths.yaml or a link you make)")
            seen[spec.sha256] = spec.id

    def by_id(self, file_id: str) -> ModelSpec:
        for spec in self.files:
            if spec.id == file_id:
                return spec
        raise KeyError(file_id)


class _Checker:
    """Collects context so every error names the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, problem: str) -> FluxopsError:
        return FluxopsError("manifest.invalid", f"{self.path}: {where}: {problem}")

    def keys(self, table: Any, allowed: dict[str, bool], where: str) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise self.fail(where, "must be a table")
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", f"unknown key (allowed: {', '.join(allowed)})")
        missing = [k for k, required in allowed.items() if required and k not in table]
        if missing:
            raise self.fail(f"{where}.{missing[0]}", "missing required key")
        return table

    def string(self, table: dict[str, Any], key: str, where: str) -> str:
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", "must be a non-empty string")
        return value.strip()


def _load_source(check: _Checker, raw: Any, where: str) -> Source:
    table = check.keys(raw, _SOURCE_KEYS, where)
    repo = check.string(table, "repo", where)
    if not _REPO.match(repo):
        raise check.fail(f"{where}.repo", f"{repo!r} is not a Hugging Face repo id like 'org/name'")
    path = check.string(table, "path", where)
    if path.startswith("/") or ".." in path.split("/") or "\\" in path:
        raise check.fail(f"{where}.path", f"{path!r} must be a relative path inside the repo")
    revision = check.string(table, "revision", where) if "revision" in table else "main"
    gated = table.get("gated", False)
    if not isinstance(gated, bool):
        raise check.fail(f"{where}.gated", "must be true or false")
    return Source(repo=repo, path=path, revision=revision, gated=gated)


def _load_file(check: _Checker, raw: Any, index: int) -> ModelSpec:
    where = f"file[{index}]"
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        where = f"file[{index}] ({raw['id']})"  # name the entry in every message about it
    table = check.keys(raw, _FILE_KEYS, where)
    file_id = check.string(table, "id", where)
    if not _ID.match(file_id):
        raise check.fail(f"{where}.id", f"{file_id!r} must be lowercase letters, digits and _")
    folder = check.string(table, "folder", where)
    if folder in ALIASES:
        raise check.fail(f"{where}.folder", f"{folder!r} is a legacy alias; write {ALIASES[folder]!r}")
    if folder not in FOLDERS:
        raise check.fail(f"{where}.folder", f"unknown ComfyUI folder {folder!r} (known: {', '.join(FOLDERS)})")
    filename = check.string(table, "filename", where)
    if (Path(filename).is_absolute() or "/" in filename or "\\" in filename or filename in (".", "..")
            or filename.startswith("..") or ":" in filename):
        raise check.fail(f"{where}.filename", f"{filename!r} must be a plain file name inside {folder}/ "
                         "(no path separators, no '..', not absolute)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in filename):
        raise check.fail(f"{where}.filename", f"{filename!r} holds a control character (NUL, newline, ...), "
                         "which no file name should")
    if len(filename.encode("utf-8")) > MAX_NAME_BYTES:
        raise check.fail(f"{where}.filename", f"{filename[:40]!r}... is {len(filename.encode('utf-8'))} bytes "
                         f"long; file systems take at most {MAX_NAME_BYTES}")
    if not filename.lower().endswith(SAFE_EXTENSIONS):
        raise check.fail(f"{where}.filename", f"{filename!r} must be a .safetensors file; pickle formats "
                         "(.ckpt, .pt, .bin) can run code when loaded and are refused")
    size = table["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise check.fail(f"{where}.size", f"{size!r} must be a whole number of bytes greater than 0")
    sha256 = table["sha256"]
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise check.fail(f"{where}.sha256", f"{sha256!r} must be 64 lowercase hex digits")
    raw_sources = table["source"]
    if not isinstance(raw_sources, list) or not raw_sources:
        raise check.fail(f"{where}.source", "must list at least one [[file.source]]")
    sources = tuple(_load_source(check, s, f"{where}.source[{i}]") for i, s in enumerate(raw_sources))
    return ModelSpec(id=file_id, folder=folder, filename=filename, size=size, sha256=sha256, sources=sources,
                     license=str(table.get("license", "")), description=str(table.get("description", "")))


def _load_comfyui(check: _Checker, raw: Any) -> ComfyPin:
    table = check.keys(raw, _COMFYUI_KEYS, "comfyui")
    url, tag = check.string(table, "url", "comfyui"), check.string(table, "tag", "comfyui")
    commit = check.string(table, "commit", "comfyui")
    if not _COMMIT.match(commit):
        raise check.fail("comfyui.commit", f"{commit!r} must be a full commit id (40 lowercase hex digits)")
    python = check.string(table, "python", "comfyui") if "python" in table else ">=3.9"
    try:
        SpecifierSet(python)
    except InvalidSpecifier as exc:
        raise check.fail("comfyui.python", f"{python!r} is not a version specifier like '>=3.10'") from exc
    return ComfyPin(url=url, tag=tag, commit=commit, python=python)


def parse_manifest(text: str, path: Path) -> Manifest:
    check = _Checker(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FluxopsError("manifest.invalid", f"{path}: not valid TOML ({exc})") from exc
    check.keys(data, _TOP_KEYS, "manifest")
    if data["schema"] != SCHEMA:
        raise check.fail("schema", f"{data['schema']!r} is not a supported schema (this fluxops reads {SCHEMA})")
    name = check.string(data, "name", "manifest")
    raw_files = data["file"]
    if not isinstance(raw_files, list) or not raw_files:
        raise check.fail("file", "must list at least one [[file]]")
    files = [_load_file(check, raw, i) for i, raw in enumerate(raw_files)]
    seen_dest: dict[str, str] = {}
    seen_id: set[str] = set()
    for spec in files:
        if spec.id in seen_id:
            raise check.fail(f"file ({spec.id}).id", "two entries have the same id")
        seen_id.add(spec.id)
        key = spec.dest.lower()  # case-insensitive file systems would make these collide
        if key in seen_dest:
            raise check.fail(f"file ({spec.id}).filename",
                             f"same destination {spec.dest} as entry {seen_dest[key]!r}")
        seen_dest[key] = spec.id
    comfyui = _load_comfyui(check, data["comfyui"]) if "comfyui" in data else None
    return Manifest(path=path, name=name, description=str(data.get("description", "")), files=tuple(files),
                    comfyui=comfyui)


def load_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FluxopsError("manifest.unreadable", f"{path}: manifest not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise FluxopsError("manifest.unreadable", f"{path}: cannot read the manifest ({exc})") from exc
    return parse_manifest(text, path)
