"""Reach the ComfyUI server `generate` talks to, starting one through `fluxops comfy` when none answers.

Auto-start happens only for a local address and a known ComfyUI folder; a server this command started is
left running (the next run reuses it) unless `--stop-after` asks to stop it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fluxops.comfy.client import ComfyClient, base_url, is_loopback
from fluxops.errors import FluxopsError
from fluxops.settings import Settings

Note = Callable[[str], None]


@dataclass(frozen=True)
class Connection:
    client: ComfyClient
    system_stats: dict[str, Any]
    started: bool  # this command started the server


def connect(settings: Settings, url: str | None, on_note: Note) -> Connection:
    address = url.rstrip("/") if url else base_url(settings.host, settings.port)
    client = ComfyClient(address)
    try:
        return Connection(client, client.system_stats(), started=False)
    except FluxopsError as exc:
        if exc.code != "comfy.unreachable":
            raise
        local = url is None and is_loopback(urlsplit(address).hostname or "")
        if not local:
            raise FluxopsError("comfy.unreachable", exc.message,
                               hint=f"check the address (--url, or --host/--port): does a ComfyUI listen at "
                               f"{address}?") from exc
        if settings.comfyui_dir is None:
            raise
    from fluxops.comfy import server

    on_note(f"no ComfyUI answers at {address}; starting one from {settings.comfyui_dir} (fluxops comfy start)")
    try:
        state = server.start(settings, on_event=on_note)
    except server.ComfyStartError as exc:
        on_note(f"last lines of {exc.log_path}:")
        for line in exc.log_tail:
            on_note(f"  {line}")
        raise
    client = ComfyClient(state.url)
    on_note(f"ComfyUI is ready at {state.url} (pid {state.pid})")
    return Connection(client, client.system_stats(), started=True)


def stop_if_started(settings: Settings, conn: Connection, on_note: Note) -> None:
    """`--stop-after`: stop the server only if this command started it."""
    if not conn.started:
        on_note("--stop-after: ComfyUI was already running before this command; it was left running")
        return
    from fluxops.comfy import server

    result = server.stop(settings)
    on_note(f"stopped the ComfyUI this command started ({result.outcome})")
