"""Fault injection for the fake ComfyUI, read from environment variables at start.

FAKE_COMFYUI_PID_DIR       write <pid>.json ({pid, create_time, argv, environ}) there at start (tests use it
                           to find leftover processes, and to see the environment the server was given)
FAKE_COMFYUI_CRASH         after the startup lines, print a traceback ending in this line and exit 1
                           (e.g. "ModuleNotFoundError: No module named 'torch'")
FAKE_COMFYUI_NEVER_READY   "1": print the startup lines, then never bind (until killed)
FAKE_COMFYUI_START_DELAY   seconds to wait before binding (the real one takes about 8 s)
FAKE_COMFYUI_EXIT_AFTER    seconds after binding, exit with code 1 (a server that dies later)
FAKE_COMFYUI_IGNORE_SIGTERM "1": ignore SIGTERM (only SIGKILL stops it)
FAKE_COMFYUI_NO_ARGV       "1": /system_stats without system.argv (as older ComfyUI versions answer)
FAKE_COMFYUI_VRAM_TOTAL / FAKE_COMFYUI_VRAM_FREE   bytes reported for the CUDA device (without --cpu)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "FAKE_COMFYUI_"


def _float(env: Mapping[str, str], name: str) -> float | None:
    value = env.get(PREFIX + name, "").strip()
    return float(value) if value else None


@dataclass(frozen=True)
class Faults:
    pid_dir: Path | None = None
    crash: str | None = None
    never_ready: bool = False
    start_delay: float = 0.0
    exit_after: float | None = None
    ignore_sigterm: bool = False
    no_argv: bool = False
    vram_total: int = 85_031_714_816
    vram_free: int = 83_000_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Faults:
        pid_dir = env.get(PREFIX + "PID_DIR")
        total = _float(env, "VRAM_TOTAL")
        free = _float(env, "VRAM_FREE")
        return cls(
            pid_dir=Path(pid_dir) if pid_dir else None,
            crash=env.get(PREFIX + "CRASH") or None,
            never_ready=env.get(PREFIX + "NEVER_READY") == "1",
            start_delay=_float(env, "START_DELAY") or 0.0,
            exit_after=_float(env, "EXIT_AFTER"),
            ignore_sigterm=env.get(PREFIX + "IGNORE_SIGTERM") == "1",
            no_argv=env.get(PREFIX + "NO_ARGV") == "1",
            vram_total=int(total) if total is not None else cls.vram_total,
            vram_free=int(free) if free is not None else cls.vram_free,
        )

    def record_pid(self, argv: list[str]) -> None:
        if self.pid_dir is None:
            return
        import psutil

        self.pid_dir.mkdir(parents=True, exist_ok=True)
        me = psutil.Process()
        record = {"pid": me.pid, "create_time": me.create_time(), "argv": argv, "environ": dict(os.environ)}
        (self.pid_dir / f"{me.pid}.json").write_text(json.dumps(record), encoding="utf-8")

    def crash_text(self) -> str:
        """A traceback shaped like a fatal import error during ComfyUI's startup."""
        return (
            "Traceback (most recent call last):\n"
            '  File "main.py", line 150, in <module>\n'
            "    import execution\n"
            f"{self.crash}\n"
        )


def env_faults() -> Faults:
    return Faults.from_env(os.environ)
