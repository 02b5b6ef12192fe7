"""Maintenance reports (text + JSON per run) and the run history (one JSON line per run)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxops.files import write_atomic

SLOWER_WARN = 1.25  # a health check more than 25% slower than the recent median is worth a look
# ...and at least this much slower in absolute terms: a FLUX image takes seconds, so a few hundredths more is the
# timing of the check itself (process scheduling, polling), not the GPU.
SLOWER_MIN_SECONDS = 0.5
HISTORY_WINDOW = 6


@dataclass(frozen=True)
class HistoryEntry:
    started_at: str
    ok: bool
    exit_code: int
    seconds_per_image: float | None
    warnings: int
    failures: int
    report: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        spi = data.get("seconds_per_image")
        return cls(str(data.get("started_at", "")), bool(data.get("ok")), int(data.get("exit_code", 1)),
                   float(spi) if isinstance(spi, (int, float)) else None, int(data.get("warnings", 0)),
                   int(data.get("failures", 0)), str(data.get("report", "")))


# Every function takes maintain's own folder (`Settings.maintain_dir`).
def history_file(folder: Path) -> Path:
    return folder / "history.jsonl"


def reports_dir(folder: Path) -> Path:
    return folder / "reports"


def read_history(folder: Path) -> list[HistoryEntry]:
    """Every run recorded so far, oldest first; a damaged line is skipped, not fatal."""
    entries = []
    try:
        lines = history_file(folder).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            entries.append(HistoryEntry.from_dict(json.loads(line)))
        except (ValueError, TypeError, AttributeError):
            continue
    return entries


def append_history(folder: Path, entry: dict[str, Any]) -> None:
    path = history_file(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:  # one short line per run: an append is atomic enough
        fh.write(json.dumps(entry, sort_keys=True) + "\n")


def report_path(folder: Path, stamp: str) -> Path:
    """The JSON report of the run stamped ``stamp``; the text report sits beside it as .txt."""
    return reports_dir(folder) / f"{stamp}.json"


def write_report(folder: Path, stamp: str, data: dict[str, Any], text: str) -> Path:
    json_path = report_path(folder, stamp)
    write_atomic(json_path, json.dumps(data, indent=2, default=str).encode())
    write_atomic(json_path.with_suffix(".txt"), text.encode())
    return json_path


def slowdown(history: list[HistoryEntry], seconds_per_image: float) -> tuple[float, float] | None:
    """(median of recent runs, ratio) when this run is more than 25% (and SLOWER_MIN_SECONDS) slower than that
    median."""
    recent = [h.seconds_per_image for h in history if h.seconds_per_image][-HISTORY_WINDOW:]
    if not recent:
        return None
    median = statistics.median(recent)
    ratio = seconds_per_image / median if median > 0 else 1.0
    slower = ratio > SLOWER_WARN and seconds_per_image - median >= SLOWER_MIN_SECONDS
    return (median, ratio) if slower else None
