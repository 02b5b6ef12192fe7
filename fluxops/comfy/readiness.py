"""Waiting for a ComfyUI that fluxops just spawned: ready once it answers as the process we started, or the
cause of its early exit, read from its log."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from fluxops.comfy import logfile
from fluxops.comfy.client import ComfyClient
from fluxops.comfy.crash import classify
from fluxops.comfy.ownership import is_ours
from fluxops.comfy.process import process_if_same, stop_process
from fluxops.comfy.state import ServerState
from fluxops.errors import FluxopsError

Event = Callable[[str], None]
LOG_TAIL_LINES = 20
_CLASSIFY_LINES = 60
_POLL_S = 0.2


class ComfyStartError(FluxopsError):
    """ComfyUI did not come up; carries the end of its log so the user sees why."""

    def __init__(self, code: str, message: str, hint: str | None, log_path: Path, log_tail: list[str]):
        super().__init__(code, message, hint)
        self.log_path = log_path
        self.log_tail = log_tail

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "log_path": str(self.log_path), "log_tail": self.log_tail}


def _early_exit(state: ServerState, returncode: int | None, python: Path) -> ComfyStartError:
    lines = logfile.tail(Path(state.log_path), _CLASSIFY_LINES)
    cause = classify(lines, returncode, str(python))
    return ComfyStartError(cause.code, cause.message, cause.hint, Path(state.log_path), lines[-LOG_TAIL_LINES:])


def _timed_out(state: ServerState, timeout: float, foreign_seen: bool) -> ComfyStartError:
    kill(state)
    why = " (another server answers on that port)" if foreign_seen else ""
    return ComfyStartError(
        "comfy.not_ready",
        f"ComfyUI did not become ready within {timeout:g} s{why}; it was stopped",
        None,
        Path(state.log_path),
        logfile.tail(Path(state.log_path), LOG_TAIL_LINES),
    )


def wait_ready(proc: subprocess.Popen, state: ServerState, python: Path, timeout: float, note: Event) -> None:
    """Return once the server on the state's port is `proc`; raise ComfyStartError when it exits first (the
    cause from its log) or `timeout` seconds pass (it is killed then)."""
    client = ComfyClient(state.url, timeout=2)
    deadline = time.monotonic() + timeout
    foreign_seen = False
    while True:
        returncode = proc.poll()
        if returncode is not None:
            raise _early_exit(state, returncode, python)
        try:
            stats = client.system_stats()
        except FluxopsError:
            stats = None
        if stats is not None and is_ours(stats, state):
            return
        if stats is not None and not foreign_seen:
            note(f"another server answers on port {state.port}; waiting for ours")
            foreign_seen = True
        if time.monotonic() >= deadline:
            raise _timed_out(state, timeout, foreign_seen)
        time.sleep(_POLL_S)


def kill(state: ServerState) -> None:
    """Stop the recorded process at once, if it still runs."""
    proc = process_if_same(state.pid, state.create_time)
    if proc is not None:
        stop_process(proc, grace=2.0)
