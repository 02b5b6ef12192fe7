"""The one ComfyUI server fluxops started, as recorded in `Settings.comfy_server_path` (`server.json`), and the
lock that `fluxops comfy start` and `stop` hold while they change it.

The record holds `pid, create_time, host, port, command, comfyui_dir, log_path, started_at`. A process counts as
the recorded one only if both its pid and its start time match (a pid can be reused).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from fluxops.comfy.client import base_url
from fluxops.comfy.command import connect_host
from fluxops.comfy.process import process_if_same
from fluxops.errors import FluxopsError
from fluxops.settings import Settings


@dataclass(frozen=True)
class ServerState:
    pid: int
    create_time: float
    host: str  # the --listen value
    port: int
    command: list[str]
    comfyui_dir: str
    log_path: str
    started_at: str  # ISO 8601, UTC
    reused: bool = field(default=False, compare=False)  # not stored: set when start() found it running

    @property
    def url(self) -> str:
        """Where fluxops reaches it (`connect_host`: loopback when it listens on every interface)."""
        return base_url(connect_host(self.host), self.port)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("reused")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerState:
        return cls(
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            host=str(data["host"]),
            port=int(data["port"]),
            command=[str(a) for a in data["command"]],
            comfyui_dir=str(data["comfyui_dir"]),
            log_path=str(data["log_path"]),
            started_at=str(data["started_at"]),
        )


def read_state(settings: Settings) -> ServerState | None:
    """The recorded server, or None when there is none (an unreadable file counts as none)."""
    try:
        return ServerState.from_dict(json.loads(settings.comfy_server_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(settings: Settings, state: ServerState) -> None:
    from fluxops.files import write_atomic

    write_atomic(settings.comfy_server_path, (json.dumps(state.to_dict(), indent=2) + "\n").encode("utf-8"))


def forget_state(settings: Settings, state: ServerState) -> None:
    """Remove the record, if it is still this one (another start may have replaced it)."""
    current = read_state(settings)
    if current is not None and (current.pid, current.create_time) == (state.pid, state.create_time):
        settings.comfy_server_path.unlink(missing_ok=True)


def is_running(state: ServerState) -> bool:
    """The recorded process still runs (same pid AND same start time)."""
    return process_if_same(state.pid, state.create_time) is not None


def running_record(settings: Settings) -> ServerState | None:
    """The recorded server while its process runs (no HTTP: whether it answers is `ownership.who_holds`)."""
    state = read_state(settings)
    return state if state is not None and is_running(state) else None


def locked(settings: Settings, timeout: float):  # -> filelock.FileLock, acquired
    """Hold the comfy lock (one `start` or `stop` at a time); `comfy.busy` when another holds it longer."""
    from filelock import FileLock, Timeout

    path = settings.comfy_lock_path
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise FluxopsError(
            "comfy.busy",
            f"another `fluxops comfy` command is starting or stopping ComfyUI (lock {lock.lock_file})",
        ) from None
    return lock
