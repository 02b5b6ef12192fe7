"""Who holds the ComfyUI port: nobody, the ComfyUI fluxops started (reusable), another ComfyUI, or a
foreign program; and, when a ComfyUI answers, the node classes it offers.

`fluxops comfy start` records the server it started in `<state_dir>/comfy/server.json` with the keys
pid, create_time, host, port, command, comfyui_dir, log_path, started_at. A pid alone can be reused by the
OS, so the record counts only while a process with that pid *and* that creation time is alive.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxops.settings import Settings

CONNECT_TIMEOUT_S = 0.5
HTTP_TIMEOUT_S = 5.0
IDENTIFY_TIMEOUT_S = 1.0  # /system_stats is cheap; a program that does not speak HTTP must not stall doctor
STATE_KEYS = ("pid", "create_time", "host", "port", "command", "comfyui_dir", "log_path", "started_at")


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
    record: dict[str, Any] | None = None  # the live server.json record, if any
    stale_record: bool = False  # a server.json whose process is gone
    system_stats: dict[str, Any] | None = None  # what GET /system_stats answered

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def answers(self) -> bool:
        return self.system_stats is not None


def state_file(settings: Settings) -> Path:
    return settings.state_dir / "comfy" / "server.json"


def read_server_record(settings: Settings) -> dict[str, Any] | None:
    """The recorded server, or None when there is no record or it is unreadable."""
    try:
        data = json.loads(state_file(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    return data


def record_is_live(record: dict[str, Any]) -> bool:
    import psutil

    try:
        created = psutil.Process(record["pid"]).create_time()
    except (psutil.Error, OSError):
        return False
    recorded = record.get("create_time")
    return isinstance(recorded, (int, float)) and abs(created - float(recorded)) < 1.0


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def find_listener(port: int) -> PortHolder | None:
    """The process listening on the port, where the OS lets us see it (other users' sockets may hide)."""
    import psutil

    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return PortHolder(None, None, None)
            try:
                proc = psutil.Process(conn.pid)
                return PortHolder(conn.pid, proc.name(), " ".join(proc.cmdline())[:300] or None)
            except (psutil.Error, OSError):
                return PortHolder(conn.pid, None, None)
    return None


def fetch_json(base_url: str, route: str, timeout: float = HTTP_TIMEOUT_S) -> Any:
    """GET a JSON route of a ComfyUI server; None when it does not answer with JSON."""
    import requests

    try:
        response = requests.get(base_url + route, timeout=timeout)
        if response.status_code != 200:
            return None
        return response.json()
    except (requests.RequestException, ValueError):
        return None


def probe_port(settings: Settings) -> ServerProbe:
    host, port = settings.host, settings.port
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    record = read_server_record(settings)
    live = record is not None and record_is_live(record)
    stale = record is not None and not live
    record = record if live else None
    if not _port_open(connect_host, port):
        return ServerProbe(connect_host, port, "free", record=record, stale_record=stale)
    holder = find_listener(port)
    probe = ServerProbe(connect_host, port, "foreign", holder, record, stale)
    stats = fetch_json(probe.base_url, "/system_stats", timeout=IDENTIFY_TIMEOUT_S)
    is_comfy = isinstance(stats, dict) and isinstance(stats.get("system"), dict) and "devices" in stats
    ours = (
        record is not None
        and record.get("port") == port
        and (holder is None or holder.pid is None or holder.pid == record["pid"])
    )
    state = "ours" if ours and is_comfy else ("comfyui" if is_comfy else "foreign")
    return ServerProbe(connect_host, port, state, holder, record, stale, stats if is_comfy else None)
