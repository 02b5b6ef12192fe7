"""Detached child processes: start one in its own session/process group, tell whether a recorded process is
still the same one (pid AND create time: pids are reused), and stop it and its children.

psutil is used for process identity and children; signals to the process group are sent with os.killpg so
that ComfyUI's own children (custom nodes may spawn some) stop with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

# create_time comes from the kernel's start time (clock ticks) and is stable for a process; the tolerance
# only absorbs float rounding through JSON.
_SAME_START = 0.01


def process_if_same(pid: int, create_time: float) -> psutil.Process | None:
    """The live process with this pid and start time; None if it exited, is a zombie or the pid was reused."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > _SAME_START:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:  # exited; its parent has not reaped it
            return None
        return proc
    except psutil.Error:
        return None


def spawn_detached(
    command: Sequence[str], *, cwd: Path, log_path: Path, env: Mapping[str, str]
) -> subprocess.Popen:
    """Start `command` detached from this terminal (its own session / process group), output to `log_path`."""
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":  # (sys.platform, not os.name: type checkers know these names per platform)
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
    else:
        kwargs["start_new_session"] = True  # setsid: no SIGINT/SIGHUP from our terminal, own process group
    with open(log_path, "ab", buffering=0) as log:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            close_fds=True,
            **kwargs,
        )  # type: ignore[call-overload]


def _gone(procs: Sequence[psutil.Process]) -> bool:
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.Error:
            continue
    return True


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> bool:
    """Poll until every process exited. psutil.wait_procs cannot be used: an orphan that nobody reaps stays
    a zombie, which psutil counts as existing."""
    deadline = time.monotonic() + timeout
    while True:
        if _gone(procs):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _signal_tree(proc: psutil.Process, children: Sequence[psutil.Process], forceful: bool) -> None:
    if os.name != "nt":
        sig = signal.SIGKILL if forceful else signal.SIGTERM
        try:
            if os.getpgid(proc.pid) == proc.pid:  # it leads its own group (we started it with setsid)
                os.killpg(proc.pid, sig)
                return
        except (ProcessLookupError, PermissionError):
            pass
    for each in [*children, proc]:
        with contextlib.suppress(psutil.NoSuchProcess):
            each.kill() if forceful else each.terminate()


def stop_process(proc: psutil.Process, grace: float) -> str:
    """Stop `proc` and its children: SIGTERM (Windows: TerminateProcess) to its group, then SIGKILL after
    `grace` seconds. Returns "terminated" or "killed"; raises psutil.AccessDenied if not allowed."""
    try:
        children = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return "terminated"
    everyone = [proc, *children]
    _signal_tree(proc, children, forceful=False)
    if _wait_gone(everyone, grace):
        return "terminated"
    _signal_tree(proc, children, forceful=True)
    _wait_gone(everyone, 10.0)
    return "killed"
