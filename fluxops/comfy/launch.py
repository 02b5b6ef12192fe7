"""What `fluxops comfy start` launches (the checked install, the interpreter, the command line) and the spawn
itself: a detached process whose output goes to a freshly rotated log, recorded in the state file before
anything waits on it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from fluxops.comfy import command as cmdline
from fluxops.comfy import logfile
from fluxops.comfy.process import spawn_detached
from fluxops.comfy.state import ServerState, write_state
from fluxops.errors import FluxopsError
from fluxops.settings import Settings


@dataclass(frozen=True)
class LaunchPlan:
    comfyui_dir: Path
    python: Path
    listen: str
    port: int
    command: list[str]


def _checked_install(settings: Settings) -> tuple[Path, Path, Path]:
    """(ComfyUI folder, its main.py, its interpreter), or the error that says which one is missing."""
    from fluxops.comfy.install import find_python

    if settings.comfyui_dir is None:
        raise FluxopsError("comfy.dir_unknown", "fluxops does not know where ComfyUI is")
    main_py = settings.comfyui_dir / "main.py"
    if not main_py.is_file():
        raise FluxopsError(
            "comfy.not_installed", f"{main_py} does not exist: {settings.comfyui_dir} is not a ComfyUI folder"
        )
    python, _source = find_python(settings.comfyui_dir, settings.comfyui_python)
    if python is None or not python.exists():
        where = python or f"{settings.comfyui_dir} (venv, .venv or python_embeded)"
        raise FluxopsError("comfy.python_missing", f"ComfyUI's Python interpreter was not found at {where}")
    return settings.comfyui_dir, main_py, python


def plan_launch(
    settings: Settings, listen: str, extra_args: Sequence[str], memory_flags: Sequence[str]
) -> LaunchPlan:
    """The command `start` runs; writes the extra_model_paths.yaml when the models live outside ComfyUI."""
    comfyui_dir, main_py, python = _checked_install(settings)
    cmdline.parse_listen(listen)
    extra_yaml = None
    if settings.models_dir is not None and cmdline.models_outside(comfyui_dir, settings.models_dir):
        extra_yaml = cmdline.write_extra_paths(settings.extra_paths_yaml, settings.models_dir)
    command = cmdline.build_command(
        python,
        main_py,
        listen=listen,
        port=settings.port,
        extra_paths_yaml=extra_yaml,
        memory_flags=memory_flags,
        extra_args=extra_args,
    )
    return LaunchPlan(comfyui_dir, python, listen, settings.port, command)


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment ComfyUI gets: ours without the Hugging Face token. ComfyUI needs no token, and every
    custom node runs in its process (and can read /proc/<pid>/environ), so neither the token variables nor
    any other variable that holds the token fluxops would use is passed on."""
    from fluxops.hub.tokens import ENV_NAMES, resolve_token

    token = resolve_token(None, env, Path.cwd()).value
    return {name: value for name, value in env.items()
            if name not in ENV_NAMES and not (token and value.strip() == token)}


def server_environment() -> dict[str, str]:
    """What every ComfyUI fluxops starts runs with: no token, and unbuffered so log lines reach the file as they
    happen (`comfy start`, generate's auto-start and each cluster worker's server alike)."""
    return {**child_environment(os.environ), "PYTHONUNBUFFERED": "1"}


def record_of(pid: int, plan: LaunchPlan, log_path: Path) -> ServerState:
    """The state record of a server just started from `plan` (create time 0 when it is already gone: the
    readiness loop then reports why)."""
    import psutil

    try:
        create_time = float(psutil.Process(pid).create_time())
    except psutil.Error:
        create_time = 0.0
    return ServerState(pid=pid, create_time=create_time, host=plan.listen, port=plan.port, command=plan.command,
                       comfyui_dir=str(plan.comfyui_dir), log_path=str(log_path),
                       started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def spawn(settings: Settings, plan: LaunchPlan, note: Callable[[str], None]) -> tuple[subprocess.Popen, ServerState]:
    """Start the planned command detached and record it; nothing unrecorded is left running if that fails."""
    log_path = logfile.rotate(settings.comfy_log_dir)
    note(f"starting ComfyUI: {' '.join(plan.command)}")
    proc = spawn_detached(plan.command, cwd=plan.comfyui_dir, log_path=log_path, env=server_environment())
    try:
        state = record_of(proc.pid, plan, log_path)
        write_state(settings, state)
    except BaseException:  # Ctrl-C or a failed state write: never leave an unrecorded server running
        proc.kill()
        proc.wait()
        raise
    return proc, state
