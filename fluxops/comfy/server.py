"""The lifecycle of the one ComfyUI fluxops runs: start (or reuse), stop, status, and where its log is.

The pieces live beside it: the state file and lock (`state`), the command and the spawn (`launch`), waiting
for readiness (`readiness`), and who holds the port (`ownership`). Nothing here touches a process fluxops did
not start.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxops.comfy import command as cmdline
from fluxops.comfy import logfile
from fluxops.comfy.client import ComfyClient
from fluxops.comfy.launch import LaunchPlan, plan_launch, spawn
from fluxops.comfy.ownership import OwnerKind, port_taken, who_holds
from fluxops.comfy.process import process_if_same, stop_process
from fluxops.comfy.readiness import ComfyStartError, Event, kill, wait_ready
from fluxops.comfy.state import ServerState, forget_state, is_running, locked, read_state, running_record
from fluxops.errors import FluxopsError
from fluxops.settings import Settings

DEFAULT_TIMEOUT = 120.0  # ComfyUI takes ~8 s on a small CPU box; custom nodes on a GPU box take longer
DEFAULT_GRACE = 10.0
STATUS_TIMEOUT = 5.0

__all__ = ["ComfyStartError", "ServerState", "ServerStatus", "StopResult", "start", "status", "stop"]


# -- start ------------------------------------------------------------------------------------------------
def _reuse(
    settings: Settings, state: ServerState, plan: LaunchPlan, explicit_address: bool, note: Event
) -> ServerState:
    """The running server fluxops started before, if it is the one asked for and it answers."""
    if explicit_address and (state.host, state.port) != (plan.listen, plan.port):
        raise FluxopsError(
            "comfy.already_running",
            f"ComfyUI started by fluxops already runs on "
            f"{state.host}:{state.port} (pid {state.pid}); only one is managed at a time",
        )
    if who_holds(settings, port=state.port, timeout=2.0).kind is not OwnerKind.OURS:
        raise FluxopsError(
            "comfy.unresponsive",
            f"the ComfyUI fluxops started (pid {state.pid}) runs but does not answer at {state.url}",
        )
    if state.command[1:] != plan.command[1:]:
        note("it was started with other arguments; `fluxops comfy stop` first to apply the new ones")
    logfile.trim(Path(state.log_path))
    return ServerState(**state.to_dict(), reused=True)


def _port_in_use(settings: Settings, plan: LaunchPlan) -> FluxopsError:
    owner = who_holds(settings, port=plan.port, listen=plan.listen, timeout=2.0)
    kind = "a server"
    if owner.system_stats is not None:
        version = owner.system_stats["system"].get("comfyui_version", "")
        kind = f"a ComfyUI {version} that fluxops did not start".replace("  ", " ")
    held = f" ({owner.listener.label})" if owner.listener else ""
    return FluxopsError(
        "comfy.port_in_use", f"port {plan.port} is already in use by {kind}{held}; it was left untouched"
    )


def start(
    settings: Settings,
    *,
    listen: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    on_event: Event | None = None,
) -> ServerState:
    """Start ComfyUI detached and wait until it answers as the process we started; reuse a healthy server
    started earlier. ComfyUI gets the memory flags the VRAM budget calls for (`memory`), unless `extra_args`
    has a memory flag of its own."""
    from fluxops.comfy.memory import budget_memory_flags

    note = on_event or (lambda _msg: None)
    memory_flags = budget_memory_flags(settings, extra_args)
    if memory_flags:
        note(f"the VRAM budget calls for {' '.join(memory_flags)} (see `fluxops doctor gpu.vram_budget`)")
    plan = plan_launch(settings, listen or cmdline.DEFAULT_LISTEN, extra_args, memory_flags)
    explicit = listen is not None or settings.sources.get("port", "default") != "default"
    with locked(settings, timeout + 30):
        previous = read_state(settings)
        if previous is not None:
            if is_running(previous):
                return _reuse(settings, previous, plan, explicit, note)
            note(f"the ComfyUI started earlier (pid {previous.pid}) is no longer running; starting a new one")
            forget_state(settings, previous)
        if port_taken(cmdline.parse_listen(plan.listen), plan.port):
            raise _port_in_use(settings, plan)
        proc, state = spawn(settings, plan, note)
        note(f"waiting for ComfyUI at {state.url} (up to {timeout:g} s)")
        try:
            wait_ready(proc, state, plan.python, timeout, note)
        except BaseException:  # an early exit, a timeout or Ctrl-C: nothing is left running or recorded
            kill(state)
            forget_state(settings, state)
            raise
        return state


# -- stop -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StopResult:
    outcome: str  # "terminated", "killed", "stale" (recorded process already gone), "not_running"
    state: ServerState | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "stopped": self.outcome in ("terminated", "killed"),
            "server": self.state.to_dict() if self.state else None,
        }


def stop(settings: Settings, *, grace: float = DEFAULT_GRACE, listen: str | None = None) -> StopResult:
    """Stop the ComfyUI fluxops started: SIGTERM to its process group, SIGKILL after `grace` seconds. Never
    touches a process fluxops did not start, even one on the same port (asked at `listen` when fluxops
    started none: `ownership.who_holds`)."""
    import psutil

    with locked(settings, grace + 60):
        state = read_state(settings)
        if state is None:
            if who_holds(settings, listen=listen, timeout=2.0).answers:
                raise FluxopsError(
                    "comfy.not_ours",
                    f"a ComfyUI answers on port {settings.port}, but fluxops did "
                    "not start it; it was left running",
                )
            return StopResult("not_running", None)
        proc = process_if_same(state.pid, state.create_time)
        if proc is None:
            forget_state(settings, state)
            return StopResult("stale", state)
        try:
            outcome = stop_process(proc, grace)
        except psutil.AccessDenied as exc:
            raise FluxopsError(
                "comfy.stop_failed", f"not allowed to stop ComfyUI (pid {state.pid}): {exc}"
            ) from exc
        if is_running(state):
            raise FluxopsError(
                "comfy.stop_failed", f"ComfyUI (pid {state.pid}) is still running after SIGKILL"
            )
        forget_state(settings, state)
        return StopResult(outcome, state)


# -- status -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerStatus:
    running: bool  # the server fluxops started runs
    answering: bool  # ... and answers as itself
    state: ServerState | None
    stale: bool = False  # a state file for a process that is gone
    uptime_s: float | None = None
    stats: dict[str, Any] | None = None
    queue_running: int | None = None
    queue_pending: int | None = None
    foreign: dict[str, Any] | None = None  # system_stats of a server on the port that fluxops did not start

    @property
    def ok(self) -> bool:
        return self.running and self.answering

    def to_dict(self) -> dict[str, Any]:
        system = (self.stats or {}).get("system", {})
        foreign = (self.foreign or {}).get("system", {})
        return {
            "running": self.running,
            "answering": self.answering,
            "stale": self.stale,
            "pid": self.state.pid if self.state else None,
            "url": self.state.url if self.state else None,
            "uptime_s": None if self.uptime_s is None else round(self.uptime_s, 1),
            "comfyui_version": system.get("comfyui_version"),
            "python_version": system.get("python_version"),
            "pytorch_version": system.get("pytorch_version"),
            "devices": (self.stats or {}).get("devices", []),
            "queue": None
            if self.queue_running is None
            else {"running": self.queue_running, "pending": self.queue_pending},
            "log_path": self.state.log_path if self.state else None,
            "server": self.state.to_dict() if self.state else None,
            "foreign": None
            if self.foreign is None
            else {"comfyui_version": foreign.get("comfyui_version"), "argv": foreign.get("argv")},
        }


def status(settings: Settings, *, listen: str | None = None) -> ServerStatus:
    """What runs: the server fluxops started (uptime, version, devices and VRAM, queue), or a foreign one
    (asked at `listen`, default as `ownership.who_holds` says). Reads only: it writes nothing, not even the
    log."""
    state = read_state(settings)
    owner = who_holds(settings, port=state.port if state else None, listen=listen, timeout=STATUS_TIMEOUT)
    record = owner.record
    if record is None:
        return ServerStatus(False, False, state, stale=state is not None, foreign=owner.system_stats)
    uptime = time.time() - record.create_time
    if owner.kind is not OwnerKind.OURS:
        return ServerStatus(True, False, record, uptime_s=uptime, foreign=owner.system_stats)
    try:
        queue = ComfyClient(owner.base_url, timeout=STATUS_TIMEOUT).queue()
    except FluxopsError:
        return ServerStatus(True, False, record, uptime_s=uptime)
    return ServerStatus(
        True,
        True,
        record,
        uptime_s=uptime,
        stats=owner.system_stats,
        queue_running=len(queue.get("queue_running", [])),
        queue_pending=len(queue.get("queue_pending", [])),
    )


# -- logs -------------------------------------------------------------------------------------------------
def current_log(settings: Settings) -> Path:
    """The log of the running (or last) ComfyUI fluxops started."""
    state = read_state(settings)
    path = Path(state.log_path) if state else settings.comfy_log_dir / logfile.LOG_NAME
    if not path.is_file():
        raise FluxopsError("comfy.no_log", f"no ComfyUI log at {path}")
    return path


def still_running(settings: Settings) -> bool:
    """A ComfyUI fluxops started is running now (read afresh: for following its log)."""
    return running_record(settings) is not None
