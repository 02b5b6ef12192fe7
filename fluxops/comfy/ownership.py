"""Who holds a ComfyUI port: nobody, the ComfyUI fluxops started, another ComfyUI, or a foreign program; and
whether a server answering there is the one fluxops started.

`who_holds` is the one answer `fluxops comfy status`, `comfy start` (its port-in-use message) and doctor's
`comfyui.port` check share. Where it connects follows one rule (`command.connect_host`) applied to the recorded
server's --listen value when that server is on the port, else to the host setting (or the --listen value a
start is about to use). A server counts as ours only if its `/system_stats` argv is the command fluxops launched
(another ComfyUI may hold the port: ComfyUI binds after loading its nodes, so the port can be taken in
between), or, for a ComfyUI too old to report argv, if the recorded pid is the one listening.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from fluxops.comfy.client import ComfyClient, base_url
from fluxops.comfy.command import connect_host
from fluxops.comfy.state import ServerState, is_running, read_state
from fluxops.errors import FluxopsError
from fluxops.settings import Settings

CONNECT_TIMEOUT_S = 0.5
IDENTIFY_TIMEOUT_S = 1.0  # /system_stats is cheap; a program that does not speak HTTP must not stall doctor
_IN_USE = {errno.EADDRINUSE, 10048, 10013}  # Windows: WSAEADDRINUSE, WSAEACCES (excluded port range)


class OwnerKind(str, Enum):
    FREE = "free"
    OURS = "ours"  # the ComfyUI fluxops started
    COMFYUI = "comfyui"  # a ComfyUI fluxops did not start
    FOREIGN = "foreign"  # a program that does not answer as ComfyUI


@dataclass(frozen=True)
class Listener:
    """The process listening on a port, as far as the OS lets this user see it."""

    pid: int
    name: str | None
    cmdline: str | None

    @property
    def label(self) -> str:
        """`python3, pid 4321` (or `pid 4321` when its name is hidden)."""
        return f"{self.name}, pid {self.pid}" if self.name else f"pid {self.pid}"


@dataclass(frozen=True)
class PortOwner:
    host: str  # where fluxops connected
    port: int
    kind: OwnerKind
    listener: Listener | None = None
    record: ServerState | None = None  # the recorded server, while its process runs
    stale_record: ServerState | None = None  # a record whose process is gone
    system_stats: dict[str, Any] | None = None  # what GET /system_stats answered, when a ComfyUI did

    @property
    def base_url(self) -> str:
        return base_url(self.host, self.port)

    @property
    def answers(self) -> bool:
        return self.system_stats is not None


def _sockaddrs(address: str, port: int) -> list[tuple[int, tuple]]:
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return []
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in infos]


def port_taken(addresses: Sequence[str], port: int) -> bool:
    """True when binding `port` on one of `addresses` fails because it is in use (the same bind ComfyUI
    does, with SO_REUSEADDR as asyncio sets it on POSIX, so a port in TIME_WAIT counts as free)."""
    for address in addresses:
        for family, sockaddr in _sockaddrs(address, port):
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                if os.name != "nt":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(sockaddr)
                except OSError as exc:
                    if exc.errno in _IN_USE:
                        return True
    return False


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def listener_pid(port: int) -> int | None:
    """The pid listening on TCP `port`, when the OS lets us see it (other users' sockets may be hidden, and
    macOS needs root)."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    return None


def find_listener(port: int) -> Listener | None:
    import psutil

    pid = listener_pid(port)
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        return Listener(pid, proc.name(), " ".join(proc.cmdline())[:300] or None)
    except (psutil.Error, OSError):
        return Listener(pid, None, None)


def is_ours(stats: dict[str, Any], state: ServerState, listening_pid: int | None = None) -> bool:
    """Whether the server that sent these `/system_stats` is the process in `state`: by its argv, or, for a
    ComfyUI too old to report argv, by the pid that listens on the port (looked up when not given)."""
    argv = stats["system"].get("argv")
    if argv is not None:
        return bool(argv == state.command[1:])
    return (listening_pid if listening_pid is not None else listener_pid(state.port)) == state.pid


def _comfyui_stats(url: str, timeout: float) -> dict[str, Any] | None:
    """ComfyUI's /system_stats answer, or None when what listens there is not a ComfyUI."""
    try:
        with ComfyClient(url, timeout=timeout) as client:
            stats = client.system_stats()
    except FluxopsError:
        return None
    return stats if isinstance(stats.get("devices"), list) else None


def who_holds(
    settings: Settings, *, port: int | None = None, listen: str | None = None, timeout: float = IDENTIFY_TIMEOUT_S
) -> PortOwner:
    """Who holds `port` (default: the port setting), asked at `connect_host(listen)`; `listen` defaults to the
    recorded server's --listen value when it is on that port, else to the host setting. Writes nothing."""
    state = read_state(settings)
    record = state if state is not None and is_running(state) else None
    stale = state if state is not None and record is None else None
    port = settings.port if port is None else port
    if listen is None:
        listen = record.host if record is not None and record.port == port else settings.host
    host = connect_host(listen)
    if not _port_open(host, port):
        return PortOwner(host, port, OwnerKind.FREE, record=record, stale_record=stale)
    listener = find_listener(port)
    stats = _comfyui_stats(base_url(host, port), timeout)
    if stats is None:
        return PortOwner(host, port, OwnerKind.FOREIGN, listener, record, stale)
    ours = record is not None and record.port == port and is_ours(stats, record, listener.pid if listener else None)
    kind = OwnerKind.OURS if ours else OwnerKind.COMFYUI
    return PortOwner(host, port, kind, listener, record, stale, stats)
