"""Who holds the ComfyUI port: nobody, the ComfyUI fluxops started (reusable), another ComfyUI, or a
foreign program; and, when a ComfyUI answers, the node classes it offers.

The server `fluxops comfy start` launched is recorded in `<state_dir>/comfy/server.json`
(`fluxops.comfy.server.read_state`). It counts as ours only while that pid with that start time runs
(`is_running`) and the server on the port answers with our command line (`answers_as`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from fluxops.comfy.client import ComfyClient, base_url
from fluxops.comfy.server import ServerState, answers_as, is_running, read_state
from fluxops.errors import FluxopsError
from fluxops.settings import Settings

CONNECT_TIMEOUT_S = 0.5
HTTP_TIMEOUT_S = 5.0
IDENTIFY_TIMEOUT_S = 1.0  # /system_stats is cheap; a program that does not speak HTTP must not stall doctor


@dataclass(frozen=True)
class PortHolder:
    pid: int | None
    name: str | None
    cmdline: str | None


@dataclass(frozen=True)
class ServerProbe:
    host: str
    port: int
    state: str  # "free", "ours" (fluxops started it), "comfyui" (another ComfyUI), "foreign"
    holder: PortHolder | None = None
    record: ServerState | None = None  # the live server.json record, if any
    stale_record: bool = False  # a server.json whose process is gone
    system_stats: dict[str, Any] | None = None  # what GET /system_stats answered

    @property
    def base_url(self) -> str:
        return base_url(self.host, self.port)

    @property
    def answers(self) -> bool:
        return self.system_stats is not None


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def find_listener(port: int) -> PortHolder | None:
    """The process listening on the port, where the OS lets us see it (other users' sockets may hide)."""
    import psutil

    from fluxops.comfy.ports import listener_pid

    pid = listener_pid(port)
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        return PortHolder(pid, proc.name(), " ".join(proc.cmdline())[:300] or None)
    except (psutil.Error, OSError):
        return PortHolder(pid, None, None)


def system_stats(url: str) -> dict[str, Any] | None:
    """ComfyUI's /system_stats answer, or None when what listens there is not a ComfyUI."""
    try:
        with ComfyClient(url, timeout=IDENTIFY_TIMEOUT_S) as client:
            stats = client.system_stats()
    except FluxopsError:
        return None
    return stats if isinstance(stats.get("devices"), list) else None


def object_info(url: str) -> dict[str, Any] | FluxopsError:
    try:
        with ComfyClient(url, timeout=HTTP_TIMEOUT_S) as client:
            return client.object_info()
    except FluxopsError as exc:
        return exc


def probe_port(settings: Settings) -> ServerProbe:
    host, port = settings.host, settings.port
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    record = read_state(settings)
    live = record is not None and is_running(record)
    stale = record is not None and not live
    record = record if live else None
    if not _port_open(connect_host, port):
        return ServerProbe(connect_host, port, "free", record=record, stale_record=stale)
    holder = find_listener(port)
    stats = system_stats(base_url(connect_host, port))
    if stats is None:
        return ServerProbe(connect_host, port, "foreign", holder, record, stale)
    ours = record is not None and record.port == port and answers_as(record, timeout=IDENTIFY_TIMEOUT_S)
    return ServerProbe(connect_host, port, "ours" if ours else "comfyui", holder, record, stale, stats)
