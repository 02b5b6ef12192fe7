"""A full `fluxops maintain` against files provisioned from the fake Hub, the fake ComfyUI and the fake NVML."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from tests.fakes.hub import FakeHub
from tests.fakes.models import flip_byte, small_models
from tests.fakes.nvml_seam import nvml_env
from tests.helpers import free_port, machine_before_setup

MODELS = small_models()


@dataclass
class Month:
    env: dict[str, str]
    comfyui: Path
    models: Path
    state: Path

    def history(self) -> list[dict]:
        path = self.state / "maintain" / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def hub():
    fake = FakeHub()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def month(cli, hub: FakeHub, tmp_path: Path, isolated: dict[str, str]) -> Month:
    """A machine after `fluxops setup` from the fake Hub: ComfyUI (fake) installed, GPU (fake) healthy."""
    manifest, comfyui = machine_before_setup(tmp_path, hub, MODELS)
    env = {"FLUXOPS_COMFYUI_DIR": str(comfyui), "FLUXOPS_MANIFEST": str(manifest),
           "FLUXOPS_PORT": str(free_port()), "HF_ENDPOINT": hub.endpoint, **nvml_env("clean_3090")}
    setup = cli("setup", env=env)
    assert setup.returncode == 0, setup.stderr
    return Month(env, comfyui, comfyui / "models", Path(isolated["FLUXOPS_STATE_DIR"]))


def maintain(cli, month: Month, *args: str, env: dict[str, str] | None = None):
    return cli("maintain", *args, env={**month.env, **(env or {})}, timeout=180)


def findings(doc: dict) -> dict[str, dict]:
    return {f["id"]: f for f in doc["data"]["findings"]}


def test_a_clean_month(cli, month: Month) -> None:
    proc = maintain(cli, month, "--json")
    doc = json.loads(proc.stdout)
    by_id = findings(doc)
    assert proc.returncode == 0, json.dumps([f for f in doc["data"]["findings"] if f["status"] != "ok"], indent=1)
    assert set(by_id) == {"models.verify", "cleanup.partials", "cleanup.logs", "doctor", "comfyui.updates",
                          "gpu.health", "healthcheck", "healthcheck.trend"}
    assert by_id["models.verify"]["facts"]["counts"] == {"ok": 5}
    assert by_id["healthcheck"]["status"] == "ok"
    assert by_id["healthcheck"]["facts"]["check"]["passed"] is True
    report = Path(doc["data"]["report"])
    assert report.is_file() and report.with_suffix(".txt").is_file()
    assert json.loads(report.read_text())["ok"] is True
    history = month.history()
    assert len(history) == 1 and history[0]["ok"] is True and history[0]["seconds_per_image"] > 0
    assert not (month.state / "comfy" / "server.json").exists()  # it started ComfyUI, so it stopped it

    quiet = maintain(cli, month, "--quiet")  # what cron runs: nothing to mail when all is well
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stdout
    assert len(month.history()) == 2
    shown = cli("maintain", "history", env=month.env)
    assert shown.returncode == 0 and shown.stdout.count("ok") >= 2


def test_a_flipped_byte_is_found_reported_and_kept(cli, month: Month) -> None:
    t5 = month.models / "text_encoders" / "t5xxl_fp16.safetensors"
    flip_byte(t5, offset=100)  # same size and mtime: only a full re-check finds it
    proc = maintain(cli, month, "--no-health-check")
    assert proc.returncode == 1
    assert "[fail] models.verify" in proc.stdout and "nothing was deleted" in proc.stdout
    assert "fluxops setup --repair" in proc.stdout
    assert t5.is_file() and t5.stat().st_size == len(MODELS[2].data)
    assert month.history()[-1]["failures"] >= 1


def test_an_orphaned_partial_is_removed(cli, month: Month) -> None:
    partials = month.models / ".fluxops-partial"
    partials.mkdir(exist_ok=True)
    orphan = partials / f"{'ab' * 32}.part"
    orphan.write_bytes(b"x" * 1000)
    proc = maintain(cli, month, "--no-health-check", "--json")
    by_id = findings(json.loads(proc.stdout))
    assert not orphan.exists()
    assert by_id["cleanup.partials"]["facts"] == {"removed": 1, "bytes": 1000}


def test_a_slowed_health_check_warns_from_history(cli, month: Month) -> None:
    from fluxops.maintain.history import append_history

    for day in ("2026-08-01", "2026-09-01", "2026-10-01"):
        append_history(month.state / "maintain", {"started_at": day, "ok": True, "exit_code": 0,
                                                   "seconds_per_image": 0.4, "warnings": 0, "failures": 0,
                                                   "report": ""})
    proc = maintain(cli, month, "--json", env={"FAKE_COMFYUI_SECONDS_PER_IMAGE": "1.5"})
    assert proc.returncode == 1
    trend = findings(json.loads(proc.stdout))["healthcheck.trend"]
    assert trend["status"] == "warn"
    assert trend["facts"]["median"] == 0.4 and trend["facts"]["ratio"] > 1.25
    assert month.history()[-1]["warnings"] >= 1


def test_an_overlapping_run_is_refused_cleanly(cli, month: Month) -> None:
    lock = month.state / "maintain" / "maintain.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    (lock.parent / "maintain.lock.owner").write_text("fluxops maintain (pid 4242 on testhost, since earlier)")
    with FileLock(str(lock)):
        proc = maintain(cli, month)
    assert proc.returncode == 1
    assert "in use by fluxops maintain (pid 4242" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert month.history() == []


def test_a_step_that_raises_is_a_failed_finding_and_the_run_still_records_itself(cli, month: Month) -> None:
    partials = month.models / ".fluxops-partial"
    (partials / f"{'cd' * 32}.part").mkdir(parents=True)  # an orphaned part...
    with FileLock(str(partials / "setup.lock")):  # ...that a running setup may be writing: pruning refuses
        proc = maintain(cli, month, "--no-health-check", "--json")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    by_id = findings(doc)
    assert by_id["cleanup.partials"]["status"] == "fail"
    assert "in use by" in by_id["cleanup.partials"]["summary"]
    assert by_id["cleanup.logs"]["status"] == "ok" and by_id["gpu.health"]["status"] == "ok"  # the rest ran
    report = Path(doc["data"]["report"])
    assert report.is_file() and report.with_suffix(".txt").is_file()
    assert "cleanup.partials" in report.with_suffix(".txt").read_text()
    assert month.history()[-1]["failures"] >= 1 and month.history()[-1]["report"] == str(report)


def test_old_rotated_logs_and_reports_beyond_the_kept_ones_are_removed(cli, month: Month) -> None:
    import os
    import time

    from fluxops.maintain.run import LOG_MAX_AGE_DAYS, REPORTS_KEPT

    logs = month.state / "comfy" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    old = time.time() - (LOG_MAX_AGE_DAYS + 5) * 86400
    for name, mtime in (("comfyui.log", old), ("comfyui.log.1", time.time() - 86400), ("comfyui.log.2", old)):
        (logs / name).write_text(f"{name}\n")
        os.utime(logs / name, (mtime, mtime))
    reports = month.state / "maintain" / "reports"
    reports.mkdir(parents=True)
    stamps = [f"2024{month_no:02d}01T041700Z" for month_no in range(1, 13)]
    stamps += [f"2025{month_no:02d}01T041700Z" for month_no in range(1, REPORTS_KEPT - 12 + 3)]  # two too many
    for stamp in stamps:
        (reports / f"{stamp}.json").write_text("{}")
        (reports / f"{stamp}.txt").write_text("old run\n")
    proc = maintain(cli, month, "--no-health-check", "--json")
    finding = findings(json.loads(proc.stdout))["cleanup.logs"]
    assert finding["status"] == "ok" and finding["facts"] == {"removed": 5}
    assert not (logs / "comfyui.log.2").exists()  # rotated and old: removed
    assert (logs / "comfyui.log.1").exists() and (logs / "comfyui.log").exists()  # recent, and the current one
    for stamp in stamps[:2]:
        assert not (reports / f"{stamp}.json").exists() and not (reports / f"{stamp}.txt").exists()
    for stamp in stamps[2:]:
        assert (reports / f"{stamp}.json").exists() and (reports / f"{stamp}.txt").exists()
