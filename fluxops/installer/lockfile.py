"""`<ComfyUI>/fluxops-lock.json`: what `fluxops comfy install` did, and whether it finished.

``state`` is "installing" from the moment the checkout exists until the last step is done, then "complete".
An install found "installing" was interrupted and is finished by the next run; a "complete" one that matches
the manifest and this machine's torch choice is left alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fluxops import __version__
from fluxops.files import write_atomic
from fluxops.installer.gitrepo import LOCK_NAME
from fluxops.machine.torchbuild import TorchChoice
from fluxops.models.manifest import ComfyPin

SCHEMA = "fluxops-comfyui-lock/1"


def lock_path(target: Path) -> Path:
    return target / LOCK_NAME


def read_lock(target: Path) -> dict[str, Any] | None:
    """The lock file, or None when there is none or it is not ours (a corrupt one counts as absent)."""
    try:
        data = json.loads(lock_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def write_lock(target: Path, state: str, pin: ComfyPin, python: dict[str, str], choice: TorchChoice,
               installed: dict[str, str | None] | None = None, constraints: Path | None = None,
               freeze: list[str] | None = None) -> Path:
    data = {
        "schema": SCHEMA,
        "state": state,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "fluxops": __version__,
        "comfyui": {"url": pin.url, "tag": pin.tag, "commit": pin.commit},
        "python": python,
        "torch": {**choice.to_dict(), "installed": installed or {}},
        "constraints": str(constraints) if constraints else None,
        "pip_freeze": freeze or [],
    }
    path = lock_path(target)
    write_atomic(path, (json.dumps(data, indent=1) + "\n").encode())
    return path
