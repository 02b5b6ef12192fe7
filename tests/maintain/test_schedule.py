"""`fluxops maintain schedule` against a fake `crontab` and `systemctl` on PATH and a temporary systemd dir."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

FAKE_CRONTAB = """#!/bin/sh
# A stand-in for crontab(1): the table lives in $FAKE_CRONTAB_FILE.
if [ "$1" = "-l" ]; then
  if [ -f "$FAKE_CRONTAB_FILE" ]; then cat "$FAKE_CRONTAB_FILE"; exit 0; fi
  echo "no crontab for $(id -un)" >&2; exit 1
fi
if [ "$1" = "-" ]; then cat > "$FAKE_CRONTAB_FILE"; exit 0; fi
echo "usage: crontab [-l | -]" >&2; exit 2
"""
FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$FAKE_SYSTEMCTL_LOG"
"""


@pytest.fixture
def fake_tools(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("crontab", FAKE_CRONTAB), ("systemctl", FAKE_SYSTEMCTL)):
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_CRONTAB_FILE": str(tmp_path / "crontab.txt"),
            "FAKE_SYSTEMCTL_LOG": str(tmp_path / "systemctl.log")}


def test_print_shows_a_monthly_cron_line_and_touches_nothing(cli, fake_tools) -> None:
    proc = cli("maintain", "schedule", "--print", env=fake_tools)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("17 4 1 * * ")
    assert "-m fluxops maintain --quiet" in proc.stdout
    assert not Path(fake_tools["FAKE_CRONTAB_FILE"]).exists()


def test_cron_install_is_idempotent_and_uninstall_removes_exactly_it(cli, fake_tools) -> None:
    table = Path(fake_tools["FAKE_CRONTAB_FILE"])
    table.write_text("0 * * * * /usr/bin/backup\n# a comment the user wrote\n")
    first = cli("maintain", "schedule", "--install", "--json", env=fake_tools)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["data"]["changed"] is True
    second = cli("maintain", "schedule", "--install", "--json", env=fake_tools)
    assert json.loads(second.stdout)["data"]["changed"] is False
    lines = table.read_text().splitlines()
    assert lines[:2] == ["0 * * * * /usr/bin/backup", "# a comment the user wrote"]
    assert sum("fluxops-maintain" in line for line in lines) == 1
    assert lines[2].startswith("17 4 1 * * ")

    removed = cli("maintain", "schedule", "--uninstall", env=fake_tools)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert table.read_text().splitlines() == ["0 * * * * /usr/bin/backup", "# a comment the user wrote"]
    again = cli("maintain", "schedule", "--uninstall", env=fake_tools)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_config_file_is_baked_into_the_job(cli, fake_tools, tmp_path: Path) -> None:
    config = tmp_path / "my.toml"
    config.write_text("jobs = 2\n")
    proc = cli("--config", str(config), "maintain", "schedule", "--install", env=fake_tools)
    assert proc.returncode == 0, proc.stderr
    assert f"--config {config} maintain" in Path(fake_tools["FAKE_CRONTAB_FILE"]).read_text()


def test_systemd_timer_install_and_uninstall(cli, fake_tools, isolated) -> None:
    unit_dir = Path(isolated["XDG_CONFIG_HOME"]) / "systemd" / "user"
    proc = cli("maintain", "schedule", "--install", "--systemd", env=fake_tools)
    assert proc.returncode == 0, proc.stderr
    timer = (unit_dir / "fluxops-maintain.timer").read_text()
    service = (unit_dir / "fluxops-maintain.service").read_text()
    assert "OnCalendar=monthly" in timer and "Persistent=true" in timer
    assert "-m fluxops maintain --quiet" in service
    log = Path(fake_tools["FAKE_SYSTEMCTL_LOG"]).read_text().splitlines()
    assert "--user enable --now fluxops-maintain.timer" in log
    again = cli("maintain", "schedule", "--install", "--systemd", "--json", env=fake_tools)
    assert json.loads(again.stdout)["data"]["changed"] is False
    (unit_dir / "other.service").write_text("[Service]\n")
    removed = cli("maintain", "schedule", "--uninstall", "--systemd", env=fake_tools)
    assert removed.returncode == 0
    assert sorted(p.name for p in unit_dir.iterdir()) == ["other.service"]
    assert "--user disable --now fluxops-maintain.timer" in Path(fake_tools["FAKE_SYSTEMCTL_LOG"]).read_text()


def test_systemd_refuses_to_overwrite_a_foreign_unit(cli, fake_tools, isolated) -> None:
    unit_dir = Path(isolated["XDG_CONFIG_HOME"]) / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    (unit_dir / "fluxops-maintain.service").write_text("[Service]\nExecStart=/bin/true\n")
    proc = cli("maintain", "schedule", "--install", "--systemd", env=fake_tools)
    assert proc.returncode == 1
    assert "not written by fluxops" in proc.stderr
    assert (unit_dir / "fluxops-maintain.service").read_text() == "[Service]\nExecStart=/bin/true\n"


def test_conflicting_actions_are_a_usage_error_like_other_commands(cli, fake_tools) -> None:
    proc = cli("maintain", "schedule", "--install", "--uninstall", env=fake_tools)
    assert proc.returncode == 2
    assert "choose one of --print, --install, --uninstall" in proc.stderr
    assert "Usage: fluxops maintain schedule" in proc.stderr  # the command's usage, as for `comfy logs -f --json`
    assert "fluxops config" not in proc.stderr  # not a config problem
    assert not Path(fake_tools["FAKE_CRONTAB_FILE"]).exists()


def test_missing_crontab_is_a_clear_error(cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    proc = cli("maintain", "schedule", "--install", env={"PATH": str(empty)})
    assert proc.returncode == 1
    assert "crontab" in proc.stderr and "fix:" in proc.stderr and "Traceback" not in proc.stderr


def test_history_empty_and_with_runs(cli, isolated) -> None:
    from fluxops.maintain.history import append_history

    proc = cli("maintain", "history")
    assert proc.returncode == 0 and "no maintenance run" in proc.stdout
    state = Path(isolated["FLUXOPS_STATE_DIR"])
    append_history(state / "maintain", {"started_at": "2026-10-01T04:17:00", "ok": True, "exit_code": 0,
                           "seconds_per_image": 12.5, "warnings": 0, "failures": 0, "report": "r1"})
    (state / "maintain" / "history.jsonl").open("a").write("{damaged\n")
    append_history(state / "maintain", {"started_at": "2026-11-01T04:17:00", "ok": False, "exit_code": 1,
                           "seconds_per_image": 16.0, "warnings": 1, "failures": 1, "report": "r2"})
    doc = json.loads(cli("maintain", "history", "--json").stdout)
    assert [e["seconds_per_image"] for e in doc["data"]] == [12.5, 16.0]
    human = cli("maintain", "history").stdout
    assert "2026-11-01" in human and "attention" in human


def test_slowdown_against_the_median() -> None:
    from fluxops.maintain.history import HistoryEntry, slowdown

    past = [HistoryEntry("d", True, 0, s, 0, 0, "") for s in (10.0, 11.0, 10.5, None)]
    assert slowdown(past, 12.0) is None
    median, ratio = slowdown(past, 14.0) or (0, 0)
    assert median == 10.5 and ratio == pytest.approx(14.0 / 10.5)
    assert slowdown([], 99.0) is None
    # A check that is 40% slower but only by 0.03 s is the check's own timing, not the GPU.
    quick = [HistoryEntry("d", True, 0, s, 0, 0, "") for s in (0.08, 0.08)]
    assert slowdown(quick, 0.11) is None and slowdown(quick, 0.9) is not None
