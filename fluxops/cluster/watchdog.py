"""`python -m fluxops.cluster.watchdog PARENT_PID COMMAND...`: run COMMAND and kill it (and its children) as
soon as PARENT_PID is gone. Where Linux's parent-death signal is not available (macOS, Windows), this keeps a
lost worker's ComfyUI from holding its GPU."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil

from fluxops.comfy.process import stop_process

POLL_SECONDS = 0.5


def main(argv: list[str]) -> int:
    parent, command = int(argv[0]), argv[1:]
    child = subprocess.Popen(command)

    def watch() -> None:
        while child.poll() is None:
            if not psutil.pid_exists(parent):
                stop_process(psutil.Process(child.pid), grace=2.0)
                return
            time.sleep(POLL_SECONDS)

    threading.Thread(target=watch, daemon=True).start()
    return child.wait()


if __name__ == "__main__":  # pragma: no cover - started as a process
    sys.exit(main(sys.argv[1:]))
