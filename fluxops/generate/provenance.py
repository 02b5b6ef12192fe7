"""What an image's sidecar may say about the model files that made it: only what fluxops checked.

For a server fluxops started on this machine (this command, or `fluxops comfy start` earlier: the recorded
process answers), the files it loads are the local ones, and each file the graph names is recorded with the
sha256 that `fluxops verify` / `setup` confirmed for it, when the verification cache still holds for the file
as it is now. Otherwise (a remote `--url`, a server someone else started, a file changed since it was
verified, a file the manifest does not list) the sidecar says why the hash was not checked, instead of
copying the manifest's hash as if it had been.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fluxops.comfy.client import is_loopback
from fluxops.generate.plan import Plan
from fluxops.generate.serverconn import Connection
from fluxops.generate.workflow import model_names
from fluxops.models.hashing import FileKey, VerifyCache
from fluxops.models.locate import found_paths
from fluxops.settings import Settings

NOT_OURS = "not checked: this ComfyUI was not started by fluxops on this machine, so its files are not known"
NOT_VERIFIED = "not checked: the file was not verified as it is now (run `fluxops verify`)"
NOT_IN_MANIFEST = "not checked: the manifest does not list this file"


def started_by_fluxops(settings: Settings, conn: Connection) -> bool:
    from fluxops.comfy.ownership import is_ours
    from fluxops.comfy.state import running_record

    if conn.started:
        return True
    if not is_loopback(urlsplit(conn.client.base_url).hostname or ""):
        return False
    state = running_record(settings)
    return state is not None and is_ours(conn.system_stats, state)


def model_records(settings: Settings, plan: Plan, conn: Connection) -> dict[str, dict[str, Any]]:
    """file id -> {"filename", "sha256" (None when not checked), and "verified_at" or "not_checked"}."""
    used = model_names(plan.workflow, plan.jobs[0].graph)
    if not used:
        return {}
    if not started_by_fluxops(settings, conn):
        return {file_id: {"filename": name, "sha256": None, "not_checked": NOT_OURS} for file_id, name in used.items()}
    manifest = plan.manifest
    paths = found_paths(manifest, settings.models_dir, settings.comfyui_dir) if manifest is not None else {}
    cache = VerifyCache(settings.verify_cache_path)
    records = {}
    for file_id, name in used.items():
        spec = next((f for f in manifest.files if f.id == file_id), None) if manifest is not None else None
        if spec is None or spec.filename != name:
            records[file_id] = {"filename": name, "sha256": None, "not_checked": NOT_IN_MANIFEST}
            continue
        verified_at = _verified_at(cache, paths.get(file_id), spec.sha256)
        records[file_id] = ({"filename": name, "sha256": spec.sha256, "verified_at": verified_at,
                             "path": str(paths[file_id])} if verified_at else
                            {"filename": name, "sha256": None, "not_checked": NOT_VERIFIED})
    return records


def _verified_at(cache: VerifyCache, path: Path | None, sha256: str) -> str | None:
    if path is None:
        return None
    try:
        when = cache.lookup(FileKey.of(path), sha256)
    except OSError:
        return None
    if when is None:
        return None
    return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="seconds") if when else "unknown"
