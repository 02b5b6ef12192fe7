"""What many tests need, in one place: ports, waiting, the real `fluxops` CLI as a child process (run, or in
the background and always stopped), the fake ComfyUI's pid records, a hand-written ComfyUI state record, and
doctor's checks run in-process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from fluxops.doctor.result import CheckResult
    from fluxops.settings import Settings
    from tests.fakes.hub import FakeHub
    from tests.fakes.models import FakeModel

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
START_TIMEOUT = 30.0  # seconds: an upper bound for a child to come up, not a timing expectation


def free_port() -> int:
    """A port nothing listens on (bound and released; tests only connect to it or hand it to a server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], object], timeout: float = START_TIMEOUT, what: str = "condition") -> None:
    """Poll `condition` until it is true; fail the test after `timeout` seconds (a bound, not a timing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(0.02)


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = START_TIMEOUT) -> None:
    """Until something accepts connections on 127.0.0.1:port; fails early when `proc` exits first."""

    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(listening, timeout, what=f"a listener on port {port}")


# -- the real CLI as a child process ----------------------------------------------------------------------
def fluxops_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fluxops", *args]


def fluxops_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the checkout first on PYTHONPATH, plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run_fluxops(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120, input: str | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m fluxops ARGS` to its end, the way a user runs it."""
    return subprocess.run(fluxops_cmd(*args), capture_output=True, text=True, env=fluxops_env(env),
                          timeout=timeout, input=input, cwd=cwd)


def spawn_fluxops(*args: str, env: Mapping[str, str] | None = None, stderr: Path | None = None,
                  cwd: Path | None = None) -> subprocess.Popen[str]:
    """`python -m fluxops ARGS` in the background (stderr to a file when given); stop it with `stop`."""
    err = stderr.open("w") if stderr is not None else subprocess.PIPE
    return subprocess.Popen(fluxops_cmd(*args), env=fluxops_env(env), text=True, stdout=subprocess.PIPE,
                            stderr=err, cwd=cwd)


def stop(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
    """End a child the test started, if it still runs, and reap it (SIGKILL when `sig` is not enough)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@contextmanager
def stopping(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> Iterator[subprocess.Popen[str]]:
    """The block works with `proc`; however it ends, `proc` is stopped and reaped."""
    try:
        yield proc
    finally:
        stop(proc, sig)


# -- the fake ComfyUI's pid records (tests/fakes/comfyui/main.py writes one per process) ------------------
def live_process(record: Mapping[str, Any]) -> psutil.Process | None:
    """The process a pid record names, if that very process (same start time) still runs."""
    try:
        proc = psutil.Process(record["pid"])
        if abs(proc.create_time() - record["create_time"]) > 0.05 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def kill_leftovers(pid_dir: Path) -> list[str]:
    """Kill every fake ComfyUI recorded in `pid_dir` that still runs; describe each one killed."""
    leftovers = []
    for record_file in sorted(pid_dir.glob("*.json")) if pid_dir.is_dir() else []:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        proc = live_process(record)
        if proc is not None:
            leftovers.append(f"pid {record['pid']}: {' '.join(record['argv'])}")
            proc.kill()  # (no wait: an orphan nobody reaps stays a zombie, which psutil would wait on)
    return leftovers


def write_server_record(settings: Settings, pid: int, port: int, *, create_time: float | None = None,
                        command: list[str] | None = None) -> Path:
    """The state file `fluxops comfy start` writes for the server it started, written by hand: `pid` (by
    default with its real start time, so it counts as running) listening on 127.0.0.1:`port`."""
    record = {
        "pid": pid,
        "create_time": create_time if create_time is not None else psutil.Process(pid).create_time(),
        "host": "127.0.0.1",
        "port": port,
        "command": command or ["python", "main.py"],
        "comfyui_dir": "/srv/ComfyUI",
        "log_path": "/tmp/comfy.log",
        "started_at": "2026-11-26T07:00:00Z",
    }
    path = settings.comfy_server_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def machine_before_setup(tmp_path: Path, hub: FakeHub, models: list[FakeModel]) -> tuple[Path, Path]:
    """`models` served by the fake Hub, their manifest, and a fake ComfyUI folder (no models yet) with its own
    Python: a machine about to run `fluxops setup`. Returns (manifest, ComfyUI folder)."""
    from tests.fakes.comfy_python import make_comfyui_python
    from tests.fakes.comfyui.install import make_comfyui_dir
    from tests.fakes.models import write_manifest

    source = tmp_path / "hub-files"
    source.mkdir()
    for model in models:
        (source / model.id).write_bytes(model.data)
        hub.add(model.repo, model.repo_path, source / model.id)
    comfyui = make_comfyui_dir(tmp_path / "ComfyUI", models={})
    make_comfyui_python(comfyui, tmp_path / "comfy-python")
    return write_manifest(tmp_path / "models.toml", models), comfyui


# -- doctor ------------------------------------------------------------------------------------------------
def run_checks(settings: Settings, *names: str, **options: Any) -> dict[str, CheckResult]:
    """Doctor's checks `names` (all when none) in-process, by id."""
    from fluxops.doctor import DoctorOptions, run_doctor

    report = run_doctor(settings, DoctorOptions(**options), dict(os.environ), names)
    return {r.id: r for r in report.checks}
