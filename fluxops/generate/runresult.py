"""What a run reports: the context every sidecar records, the events the CLI shows while it runs, and the
result (images saved, per-prompt timings, the throughput figures), also when it fails part-way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.generate.workflow import Workflow


@dataclass(frozen=True)
class RunContext:
    """What every sidecar records besides the job's own parameters."""

    workflow: Workflow
    models: dict[str, dict[str, Any]]  # file id -> {"filename", "sha256", "verified_at" or "not_checked"}
    server: dict[str, Any]  # {"url", "comfyui_version"}
    output_dir: Path
    server_argv: tuple[str, ...] = ()  # the server's command line (/system_stats), for the out-of-memory hint


class EventKind(str, Enum):
    QUEUED = "queued"  # the server accepted the job's prompt
    STARTED = "started"  # it began to run
    NODE = "node"  # a node of it began (text: which)
    STEP = "step"  # a sampler step ended (step, steps)
    SAVED = "saved"  # an image of it was written (path)
    CACHED = "cached"  # ComfyUI answered it from its cache: no new image was generated
    FALLBACK = "fallback"  # the WebSocket was lost or came back: polling, or streaming again (text: what)
    CANCELLED = "cancelled"  # Ctrl-C or an error removed the run's unfinished prompts (text: what)


@dataclass(frozen=True)
class Event:
    """Something the user may want to see while the run goes on."""

    kind: EventKind
    job: int
    jobs: int
    text: str = ""
    step: int | None = None
    steps: int | None = None
    path: Path | None = None


@dataclass(frozen=True)
class RunResult:
    images: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    seconds: float
    transport: str  # how the run was followed at its end: "websocket" or "polling"
    reconnects: int = 0  # times the WebSocket dropped and was reopened

    @property
    def generated(self) -> int:
        """Images the server made in this run: those it answered from its cache took no GPU time, and
        counting them would flatter the figures."""
        return sum(1 for image in self.images if not image.get("cached"))

    @property
    def cached(self) -> int:
        return len(self.images) - self.generated

    @property
    def seconds_per_image(self) -> float | None:
        return round(self.seconds / self.generated, 3) if self.generated else None

    @property
    def images_per_minute(self) -> float | None:
        return round(60 * self.generated / self.seconds, 2) if self.generated and self.seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "jobs": self.jobs, "seconds": round(self.seconds, 3),
                "seconds_per_image": self.seconds_per_image, "images_per_minute": self.images_per_minute,
                "cached_images": self.cached,
                "transport": self.transport, "reconnects": self.reconnects}


def iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds") if epoch else None


class PartialRunError(FluxopsError):
    """The error a run ended with (same code, message, hint and exit code), with what it did before: the
    images already saved are reported, not lost in the error."""

    def __init__(self, error: FluxopsError, result: RunResult):
        super().__init__(error.code, error.message, hint=error.hint, exit_code=error.exit_code)
        self.result = result

