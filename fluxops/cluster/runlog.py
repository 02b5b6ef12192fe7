"""What `generate --cluster` leaves in `--output`: every image with its JSON sidecar (as single-box generate writes
them, plus the node, worker and attempt), and `run.jsonl`, one line per job as it ends:
``{"job", "prompt", "seed", "status": "done"|"failed", "node", "worker", "attempts", "seconds", "image", "error"}``.

Each line is written whole with one `write` to a file opened for appending, and flushed to disk, so a run that
is killed leaves every line it wrote readable. A later run with the same `--output` reads it back: the jobs
already done are skipped and the seeds of the others are reused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.generate.imagefiles import save_image

RUN_LOG = "run.jsonl"
FIELDS = ("job", "prompt", "seed", "status", "node", "worker", "attempts", "seconds", "image", "error")


@dataclass
class PastRun:
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # job key -> its last "done" line
    seeds: dict[str, int] = field(default_factory=dict)  # job key -> the seed it last ran with


def read_past(output: Path) -> PastRun:
    """What earlier runs into this folder recorded (a line cut short by a crash is ignored)."""
    past = PastRun()
    path = output / RUN_LOG
    if not path.is_file():
        return past
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("job"), str):
            continue
        if isinstance(entry.get("seed"), int):
            past.seeds[entry["job"]] = entry["seed"]
        if entry.get("status") == "done":
            past.done[entry["job"]] = entry
    return past


class RunLog:
    def __init__(self, output: Path):
        self.output = output
        self.path = output / RUN_LOG

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        line = {name: entry.get(name) for name in FIELDS}
        data = (json.dumps(line, default=str) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise FluxopsError("generate.save_failed", f"cannot append to {self.path}: {exc.strerror or exc}")\
                from exc
        return line

    def save_images(self, images: list[dict[str, Any]], extra: dict[str, Any]) -> list[str]:
        """Write a job's images and sidecars (the worker's sidecar plus `extra`: node, worker, attempt)."""
        paths = []
        for image in images:
            path, _sidecar = save_image(self.output, image["stem"], image["data"], {**image["sidecar"], **extra})
            paths.append(str(path))
        return paths
