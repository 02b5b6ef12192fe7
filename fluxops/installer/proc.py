"""Run git and pip as child processes, passing their output on line by line and keeping its tail for errors.

The child shares our process group, so a Ctrl-C in the terminal reaches it too; we then wait for it to exit
(killing it after a grace period) and report the interruption.
"""

from __future__ import annotations

import subprocess
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fluxops.errors import FluxopsError

GRACE_S = 10.0
TAIL_LINES = 20

OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class Finished:
    returncode: int
    tail: tuple[str, ...]

    @property
    def last_lines(self) -> str:
        return "\n".join(self.tail[-8:])


def _ignore(line: str) -> None:
    return None


def run_streamed(argv: Sequence[str], env: Mapping[str, str], on_output: OutputSink | None = None,
                 cwd: Path | None = None, what: str | None = None) -> Finished:
    """Run `argv` to completion with stdout and stderr merged, each line handed to `on_output`; `what` names
    the step in the message of an interruption."""
    sink = on_output or _ignore
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(env), cwd=cwd, text=True, errors="replace", bufsize=1)
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\r\n")
            tail.append(line)
            sink(line)
        return Finished(proc.wait(), tuple(tail))
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        doing = what or f"{Path(argv[0]).name} was running"
        raise FluxopsError("install.interrupted", f"interrupted while {doing}") from None
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


def run_quiet(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None,
              timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """A short query (git rev-parse, python -c): captured output, bounded in time."""
    return subprocess.run(list(argv), capture_output=True, text=True, env=dict(env), cwd=cwd, timeout=timeout,
                          stdin=subprocess.DEVNULL, errors="replace")
