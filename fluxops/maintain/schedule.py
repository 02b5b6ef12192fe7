"""Install, show and remove the monthly `fluxops maintain` job: crontab, systemd user timer, or schtasks.

Idempotent: the job carries a marker, installing again replaces it (never a second entry), and uninstall
removes exactly what carries the marker. The OS tools (`crontab`, `systemctl`, `schtasks`) are run as
subprocesses; tests put fakes of them on PATH.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fluxops.errors import FluxopsError

MARKER = "# fluxops-maintain (managed by fluxops; remove with: fluxops maintain schedule --uninstall)"
UNIT = "fluxops-maintain"
TASK_NAME = "fluxops-maintain"
CRON_WHEN = "17 4 1 * *"  # 04:17 on the 1st of each month: off the hour, when few people work


@dataclass(frozen=True)
class ScheduleResult:
    kind: str  # "cron", "systemd", "schtasks"
    action: str  # "print", "install", "uninstall"
    changed: bool
    text: str  # what was (or would be) installed or removed, for the user to read
    location: str


def job_command(extra_args: list[str]) -> list[str]:
    """The command the job runs: this interpreter, so the job uses the fluxops installed here."""
    return [sys.executable, "-m", "fluxops", *extra_args, "maintain", "--quiet"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FluxopsError("schedule.tool_missing", f"`{name}` is not installed or not on PATH")
    return path


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)


# -- cron ---------------------------------------------------------------------------------------------
def cron_line(command: list[str]) -> str:
    return f"{CRON_WHEN} {shlex.join(command)} {MARKER}"


def _read_crontab() -> list[str]:
    proc = _run([_tool("crontab"), "-l"])
    if proc.returncode != 0:
        if "no crontab" in (proc.stderr + proc.stdout).lower():
            return []
        raise FluxopsError("schedule.failed", f"crontab -l failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout.splitlines()


def _write_crontab(lines: list[str]) -> None:
    text = "\n".join(lines) + ("\n" if lines else "")
    proc = _run([_tool("crontab"), "-"], stdin=text)
    if proc.returncode != 0:
        raise FluxopsError("schedule.failed", f"crontab could not be written: {proc.stderr.strip()}")


def cron(action: str, command: list[str]) -> ScheduleResult:
    line = cron_line(command)
    if action == "print":
        return ScheduleResult("cron", action, False, line, "crontab")
    current = _read_crontab()
    kept = [entry for entry in current if MARKER not in entry]
    new = [*kept, line] if action == "install" else kept
    changed = new != current
    if changed:
        _write_crontab(new)
    removed = "\n".join(entry for entry in current if MARKER in entry)
    return ScheduleResult("cron", action, changed, line if action == "install" else removed, "crontab")


# -- systemd user timer -----------------------------------------------------------------------------
def systemd_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def systemd_units(command: list[str]) -> dict[str, str]:
    head = f"# {MARKER.lstrip('# ')}\n"
    service = (head + "[Unit]\nDescription=fluxops monthly maintenance\n\n[Service]\nType=oneshot\n"
               f"ExecStart={shlex.join(command)}\n")
    timer = (head + "[Unit]\nDescription=Run fluxops maintenance monthly\n\n[Timer]\nOnCalendar=monthly\n"
             "RandomizedDelaySec=1h\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n")
    return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}


def systemd(action: str, command: list[str]) -> ScheduleResult:
    units = systemd_units(command)
    folder = systemd_dir()
    text = "\n".join(f"--- {folder / name}\n{body}" for name, body in units.items())
    if action == "print":
        return ScheduleResult("systemd", action, False, text, str(folder))
    systemctl = _tool("systemctl")
    changed = False
    if action == "install":
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in units.items():
            path = folder / name
            if not path.exists() or path.read_text(encoding="utf-8") != body:
                if path.exists() and MARKER.lstrip("# ") not in path.read_text(encoding="utf-8"):
                    raise FluxopsError("schedule.failed", f"{path} exists and was not written by fluxops; "
                                       "not overwriting it")
                path.write_text(body, encoding="utf-8")
                changed = True
        for cmd in (["--user", "daemon-reload"], ["--user", "enable", "--now", f"{UNIT}.timer"]):
            proc = _run([systemctl, *cmd])
            if proc.returncode != 0:
                raise FluxopsError("schedule.failed", f"systemctl {' '.join(cmd)} failed: {proc.stderr.strip()}")
        return ScheduleResult("systemd", action, changed, text, str(folder))
    ours = [folder / name for name in units
            if (folder / name).is_file() and MARKER.lstrip("# ") in (folder / name).read_text(encoding="utf-8")]
    if ours:
        _run([systemctl, "--user", "disable", "--now", f"{UNIT}.timer"])
        for path in ours:
            path.unlink()
        _run([systemctl, "--user", "daemon-reload"])
        changed = True
    return ScheduleResult("systemd", action, changed, "\n".join(map(str, ours)), str(folder))


# -- Windows task scheduler -----------------------------------------------------------------------------
def schtasks_command(command: list[str]) -> list[str]:
    return ["schtasks", "/Create", "/SC", "MONTHLY", "/D", "1", "/ST", "04:17", "/TN", TASK_NAME,
            "/TR", subprocess.list2cmdline(command), "/F"]


def schtasks(action: str, command: list[str]) -> ScheduleResult:
    create = schtasks_command(command)
    text = subprocess.list2cmdline(create)
    if action == "print":
        return ScheduleResult("schtasks", action, False, text, TASK_NAME)
    exe = _tool("schtasks")
    cmd = [exe, *create[1:]] if action == "install" else [exe, "/Delete", "/TN", TASK_NAME, "/F"]
    proc = _run(cmd)
    if proc.returncode != 0 and action == "install":
        raise FluxopsError("schedule.failed", f"schtasks failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return ScheduleResult("schtasks", action, proc.returncode == 0, text, TASK_NAME)


def manage(action: str, use_systemd: bool, extra_args: list[str]) -> ScheduleResult:
    command = job_command(extra_args)
    if os.name == "nt":
        return schtasks(action, command)
    if use_systemd:
        return systemd(action, command)
    return cron(action, command)
