"""Is a TCP port free to listen on, and who holds it."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence

_IN_USE = {errno.EADDRINUSE, 10048, 10013}  # Windows: WSAEADDRINUSE, WSAEACCES (excluded port range)


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


def listener(port: int) -> str | None:
    """`name, pid N` of the process listening on `port`, when known."""
    import psutil

    pid = listener_pid(port)
    if pid is None:
        return None
    try:
        return f"{psutil.Process(pid).name()}, pid {pid}"
    except psutil.Error:
        return f"pid {pid}"
