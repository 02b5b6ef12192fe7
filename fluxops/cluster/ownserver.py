"""A worker's own ComfyUI: planned by `fluxops comfy`'s launch code (same flags and settings as `comfy start`),
on 127.0.0.1 at a free port, with its own output, temp and user folders, and never outliving the worker.

On Linux the child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG, prctl(2):
https://man7.org/linux/man-pages/man2/prctl.2.html). The signal follows the parent *thread* that forked the
child, so the Popen happens on a thread of its own that lives as long as the worker process. Elsewhere the
command runs under `fluxops.cluster.watchdog`, which kills it when its parent is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from fluxops.comfy.launch import plan_launch, record_of, server_environment
from fluxops.comfy.readiness import kill, wait_ready
from fluxops.comfy.state import ServerState
from fluxops.settings import Settings

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def folder_flags(folder: Path) -> list[str]:
    """ComfyUI names its images by scanning its output folder: two servers sharing one overwrite each other's
    files, so each worker's server gets its own output, temp and user (database) folders."""
    flags = []
    for name in ("output", "temp", "user"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        flags += [f"--{name}-directory", str(folder / name)]
    return flags


def _die_with_parent(parent: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)
    return preexec


class OwnServer:
    """Start with `start()`, which returns once the server answers as the process it started."""

    def __init__(self, settings: Settings, extra_args: Sequence[str], folder: Path, memory_flags: Sequence[str]):
        self.settings = settings
        self.extra_args = [*extra_args, *folder_flags(folder)]
        self.folder = folder
        self.memory_flags = list(memory_flags)
        self.proc: subprocess.Popen | None = None
        self.state: ServerState | None = None

    def start(self, timeout: float, note: Callable[[str], None]) -> ServerState:
        settings = self.settings.replace(port=free_port())
        plan = plan_launch(settings, "127.0.0.1", self.extra_args, self.memory_flags)
        spawned = threading.Event()
        failure: list[BaseException] = []

        def own() -> None:  # the long-lived thread the child's parent-death signal is tied to
            try:
                self.proc = self._popen(plan.command, plan.comfyui_dir)
            except BaseException as exc:  # handed to the waiting thread
                failure.append(exc)
                return
            finally:
                spawned.set()
            self.proc.wait()
            threading.Event().wait()  # never return: the thread must outlive the child

        threading.Thread(target=own, name="comfyui-owner", daemon=True).start()
        spawned.wait()
        if failure:
            raise failure[0]
        assert self.proc is not None
        self.state = record_of(self.proc.pid, plan, self.folder / "comfyui.log")
        wait_ready(self.proc, self.state, plan.python, timeout, note)
        return self.state

    def _popen(self, command: list[str], cwd: Path) -> subprocess.Popen:
        env = server_environment()
        with open(self.folder / "comfyui.log", "ab", buffering=0) as log:
            if sys.platform == "linux":
                return subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, close_fds=True, start_new_session=True,
                                        preexec_fn=_die_with_parent(os.getpid()))
            watched = [sys.executable, "-m", "fluxops.cluster.watchdog", str(os.getpid()), *command]
            return subprocess.Popen(watched, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, close_fds=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.state is not None:
            kill(self.state)

