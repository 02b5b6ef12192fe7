"""The ComfyUI process that fluxops starts, watches and stops.

The state file `<state_dir>/comfy/server.json` records the one server fluxops started:
`pid, create_time, host, port, command, comfyui_dir, log_path, started_at`. A process counts as ours only
if both its pid and its start time match (a pid can be reused), and a server answering on the port counts as
ours only if its `/system_stats` argv is the command we launched (another ComfyUI may hold the port:
ComfyUI binds after loading its nodes, so the port can be taken in between).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fluxops.comfy import command as cmdline
from fluxops.comfy import logfile
from fluxops.comfy.client import ComfyClient, base_url
from fluxops.comfy.crash import classify
from fluxops.comfy.process import process_if_same, spawn_detached, stop_process
from fluxops.errors import FluxopsError
from fluxops.settings import Settings

Event = Callable[[str], None]
LOG_TAIL_LINES = 20
DEFAULT_TIMEOUT = 120.0  # ComfyUI takes ~8 s on a small CPU box; custom nodes on a GPU box take longer
DEFAULT_GRACE = 10.0
_POLL = 0.2


class ComfyStartError(FluxopsError):
    """ComfyUI did not come up; carries the end of its log so the user sees why."""

    def __init__(self, code: str, message: str, hint: str | None, log_path: Path, log_tail: list[str]):
        super().__init__(code, message, hint)
        self.log_path = log_path
        self.log_tail = log_tail

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "log_path": str(self.log_path), "log_tail": self.log_tail}


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
        """Where fluxops reaches it (loopback when it listens on all interfaces)."""
        return base_url(cmdline.probe_host(cmdline.parse_listen(self.host)), self.port)

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


def state_path(settings: Settings) -> Path:
    return settings.comfy_server_path


def read_state(settings: Settings) -> ServerState | None:
    """The recorded server, or None when there is none (an unreadable file counts as none)."""
    try:
        return ServerState.from_dict(json.loads(state_path(settings).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(settings: Settings, state: ServerState) -> None:
    from fluxops.files import write_atomic

    write_atomic(state_path(settings), (json.dumps(state.to_dict(), indent=2) + "\n").encode("utf-8"))


def _forget_state(settings: Settings, state: ServerState) -> None:
    current = read_state(settings)
    if current is not None and (current.pid, current.create_time) == (state.pid, state.create_time):
        state_path(settings).unlink(missing_ok=True)


def is_running(state: ServerState) -> bool:
    """The recorded process still runs (same pid AND same start time)."""
    return process_if_same(state.pid, state.create_time) is not None


def is_ours(stats: dict[str, Any], state: ServerState) -> bool:
    """Whether the server that sent these `/system_stats` is the process in `state`: by its argv, or, for a
    ComfyUI too old to report argv, by the pid that listens on the port."""
    argv = stats["system"].get("argv")
    if argv is not None:
        return bool(argv == state.command[1:])
    from fluxops.comfy.ports import listener_pid

    return listener_pid(state.port) == state.pid


def answers_as(state: ServerState, timeout: float = 2.0) -> bool:
    """The server on the state's port is the process we launched."""
    try:
        return is_ours(ComfyClient(state.url, timeout=timeout).system_stats(), state)
    except FluxopsError:
        return False


def _lock(settings: Settings, timeout: float):  # -> filelock.FileLock
    from filelock import FileLock

    path = settings.comfy_lock_path
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=timeout)


def _locked(settings: Settings, timeout: float):
    from filelock import Timeout

    lock = _lock(settings, timeout)
    try:
        lock.acquire()
    except Timeout:
        raise FluxopsError(
            "comfy.busy",
            f"another `fluxops comfy` command is starting or stopping ComfyUI (lock {lock.lock_file})",
        ) from None
    return lock


# -- start ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    comfyui_dir: Path
    python: Path
    listen: str
    port: int
    command: list[str]


def _plan(settings: Settings, listen: str, extra_args: Sequence[str], memory_flags: Sequence[str]) -> _Plan:
    from fluxops.comfy.install import inspect_install

    if settings.comfyui_dir is None:
        raise FluxopsError("comfy.dir_unknown", "fluxops does not know where ComfyUI is")
    install = inspect_install(settings.comfyui_dir, settings.comfyui_python)
    if not install.main_py.is_file():
        raise FluxopsError(
            "comfy.not_installed",
            f"{install.main_py} does not exist: {settings.comfyui_dir} is not a ComfyUI folder",
        )
    if install.python is None or not install.python.exists():
        where = install.python or f"{settings.comfyui_dir} (venv, .venv or python_embeded)"
        raise FluxopsError("comfy.python_missing", f"ComfyUI's Python interpreter was not found at {where}")
    cmdline.parse_listen(listen)
    extra_yaml = None
    if cmdline.models_outside(settings.comfyui_dir, settings.models_dir):
        assert settings.models_dir is not None
        extra_yaml = cmdline.write_extra_paths(settings.extra_paths_yaml, settings.models_dir)
    command = cmdline.build_command(
        install.python,
        install.main_py,
        listen=listen,
        port=settings.port,
        extra_paths_yaml=extra_yaml,
        memory_flags=memory_flags,
        extra_args=extra_args,
    )
    return _Plan(settings.comfyui_dir, install.python, listen, settings.port, command)


def _reuse(
    settings: Settings, state: ServerState, plan: _Plan, explicit_address: bool, note: Event
) -> ServerState:
    """The running server fluxops started before, if it is the one asked for and it answers."""
    if explicit_address and (state.host, state.port) != (plan.listen, plan.port):
        raise FluxopsError(
            "comfy.already_running",
            f"ComfyUI started by fluxops already runs on "
            f"{state.host}:{state.port} (pid {state.pid}); only one is managed at a time",
        )
    if not answers_as(state):
        raise FluxopsError(
            "comfy.not_ready",
            f"the ComfyUI fluxops started (pid {state.pid}) runs but does not answer at {state.url}",
            "stop it with `fluxops comfy stop`, then start again",
        )
    if state.command[1:] != plan.command[1:]:
        note("it was started with other arguments; `fluxops comfy stop` first to apply the new ones")
    logfile.trim(Path(state.log_path))
    return ServerState(**state.to_dict(), reused=True)


def _port_in_use(plan: _Plan) -> FluxopsError:
    from fluxops.comfy.ports import listener

    who = listener(plan.port)
    url = base_url(cmdline.probe_host(cmdline.parse_listen(plan.listen)), plan.port)
    kind = "a server"
    try:
        stats = ComfyClient(url, timeout=2).system_stats()
        kind = f"a ComfyUI {stats['system'].get('comfyui_version', '')} that fluxops did not start".replace(
            "  ", " "
        )
    except FluxopsError:
        pass
    held = f" ({who})" if who else ""  # e.g. " (python3, pid 4321)"
    return FluxopsError(
        "comfy.port_in_use", f"port {plan.port} is already in use by {kind}{held}; it was left untouched"
    )


def _early_exit(
    settings: Settings, state: ServerState, returncode: int | None, python: Path, extra: str = ""
) -> ComfyStartError:
    lines = logfile.tail(Path(state.log_path), 60)
    cause = classify(lines, returncode, str(python))
    return ComfyStartError(
        cause.code, cause.message + extra, cause.hint, Path(state.log_path), lines[-LOG_TAIL_LINES:]
    )


def _wait_ready(
    settings: Settings, proc: Any, state: ServerState, python: Path, timeout: float, note: Event
) -> None:
    client = ComfyClient(state.url, timeout=2)
    deadline = time.monotonic() + timeout
    foreign_noted = False
    while True:
        returncode = proc.poll()
        if returncode is not None:
            raise _early_exit(settings, state, returncode, python)
        try:
            stats: dict[str, Any] | None = client.system_stats()
        except FluxopsError:
            stats = None
        if stats is not None and is_ours(stats, state):
            return
        if stats is not None and not foreign_noted:
            note(f"another server answers on port {state.port}; waiting for ours")
            foreign_noted = True
        if time.monotonic() >= deadline:
            _kill(state)
            lines = logfile.tail(Path(state.log_path), LOG_TAIL_LINES)
            why = " (another server answers on that port)" if foreign_noted else ""
            raise ComfyStartError(
                "comfy.not_ready",
                f"ComfyUI did not become ready within {timeout:g} s{why}; it was stopped",
                None,
                Path(state.log_path),
                lines,
            )
        time.sleep(_POLL)


def _kill(state: ServerState) -> None:
    proc = process_if_same(state.pid, state.create_time)
    if proc is not None:
        stop_process(proc, grace=2.0)


def _spawn(settings: Settings, plan: _Plan, note: Event) -> tuple[Any, ServerState]:
    import psutil

    log_path = logfile.rotate(settings.comfy_log_dir)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # log lines reach the file as they happen
    note(f"starting ComfyUI: {' '.join(plan.command)}")
    proc = spawn_detached(plan.command, cwd=plan.comfyui_dir, log_path=log_path, env=env)
    try:
        try:
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            create_time = 0.0  # already gone: the readiness loop reports why
        state = ServerState(
            pid=proc.pid,
            create_time=create_time,
            host=plan.listen,
            port=plan.port,
            command=plan.command,
            comfyui_dir=str(plan.comfyui_dir),
            log_path=str(log_path),
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        _write_state(settings, state)
    except BaseException:  # Ctrl-C or a failed state write: never leave an unrecorded server running
        proc.kill()
        proc.wait()
        raise
    return proc, state


def start(
    settings: Settings,
    *,
    listen: str | None = None,
    extra_args: Sequence[str] = (),
    memory_flags: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: Event | None = None,
) -> ServerState:
    """Start ComfyUI detached and wait until it answers as the process we started; reuse a healthy server
    started earlier. `memory_flags` None means: the flags doctor's VRAM budget calls for (dropped when
    `extra_args` has a memory flag)."""
    note = on_event or (lambda _msg: None)
    if memory_flags is None:
        memory_flags = budget_memory_flags(settings, extra_args)
        if memory_flags:
            note(f"the VRAM budget calls for {' '.join(memory_flags)} (see `fluxops doctor gpu.vram_budget`)")
    plan = _plan(settings, listen or cmdline.DEFAULT_LISTEN, extra_args, memory_flags)
    explicit = listen is not None or settings.sources.get("port", "default") != "default"
    with _locked(settings, timeout + 30):
        previous = read_state(settings)
        if previous is not None:
            if is_running(previous):
                return _reuse(settings, previous, plan, explicit, note)
            note(f"the ComfyUI started earlier (pid {previous.pid}) is no longer running; starting a new one")
            _forget_state(settings, previous)
        from fluxops.comfy.ports import port_taken

        if port_taken(cmdline.parse_listen(plan.listen), plan.port):
            raise _port_in_use(plan)
        proc, state = _spawn(settings, plan, note)
        note(f"waiting for ComfyUI at {state.url} (up to {timeout:g} s)")
        try:
            _wait_ready(settings, proc, state, plan.python, timeout, note)
        except BaseException:  # an early exit, a timeout or Ctrl-C: nothing is left running or recorded
            _kill(state)
            _forget_state(settings, state)
            raise
        return state


def budget_memory_flags(settings: Settings, extra_args: Sequence[str]) -> list[str]:
    """Launch flags from doctor's VRAM budget for the GPU ComfyUI will use (the environment it inherits)."""
    from fluxops.doctor import memory_flags

    args = list(extra_args)
    device = None
    if "--cuda-device" in args[:-1]:
        with contextlib.suppress(ValueError):
            device = int(args[args.index("--cuda-device") + 1])
    return memory_flags(settings, os.environ, cuda_device=device)


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


def _foreign_answer(settings: Settings, port: int) -> dict[str, Any] | None:
    """`/system_stats` of a server on our port that fluxops did not start (None when nothing answers)."""
    try:
        return ComfyClient(base_url("127.0.0.1", port), timeout=2).system_stats()
    except FluxopsError:
        return None


def stop(settings: Settings, *, grace: float = DEFAULT_GRACE) -> StopResult:
    """Stop the ComfyUI fluxops started: SIGTERM to its process group, SIGKILL after `grace` seconds. Never
    touches a process fluxops did not start, even one on the same port."""
    import psutil

    with _locked(settings, grace + 60):
        state = read_state(settings)
        if state is None:
            if _foreign_answer(settings, settings.port) is not None:
                raise FluxopsError(
                    "comfy.not_ours",
                    f"a ComfyUI answers on port {settings.port}, but fluxops did "
                    "not start it; it was left running",
                )
            return StopResult("not_running", None)
        proc = process_if_same(state.pid, state.create_time)
        if proc is None:
            _forget_state(settings, state)
            return StopResult("stale", state)
        try:
            outcome = stop_process(proc, grace)
        except psutil.AccessDenied as exc:
            raise FluxopsError(
                "comfy.stop_failed", f"not allowed to stop ComfyUI (pid {state.pid}): {exc}"
            ) from exc
        if process_if_same(state.pid, state.create_time) is not None:
            raise FluxopsError(
                "comfy.stop_failed", f"ComfyUI (pid {state.pid}) is still running after SIGKILL"
            )
        _forget_state(settings, state)
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
            else {
                "comfyui_version": self.foreign.get("system", {}).get("comfyui_version"),
                "argv": self.foreign.get("system", {}).get("argv"),
            },
        }


def status(settings: Settings, timeout: float = 5.0) -> ServerStatus:
    """What runs: the server fluxops started (uptime, version, devices and VRAM, queue), or a foreign one."""
    state = read_state(settings)
    proc = process_if_same(state.pid, state.create_time) if state else None
    if state is None or proc is None:
        port = state.port if state else settings.port
        return ServerStatus(
            False, False, state, stale=state is not None, foreign=_foreign_answer(settings, port)
        )
    uptime = time.time() - state.create_time
    logfile.trim(Path(state.log_path))
    client = ComfyClient(state.url, timeout=timeout)
    try:
        stats = client.system_stats()
        if not is_ours(stats, state):
            return ServerStatus(True, False, state, uptime_s=uptime, foreign=stats)
        queue = client.queue()
    except FluxopsError:
        return ServerStatus(True, False, state, uptime_s=uptime)
    return ServerStatus(
        True,
        True,
        state,
        uptime_s=uptime,
        stats=stats,
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
    state = read_state(settings)
    return state is not None and is_running(state)
