"""The monthly job: re-verify, clean up, doctor, ComfyUI updates, GPU health, the end-to-end health check,
and the health check's time against history. Each step returns a finding (the doctor's CheckResult); the
run's verdict, report and history line are data. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fluxops.doctor.result import CheckResult, Status, fail, isolated, ok, skip, warn
from fluxops.errors import FluxopsError
from fluxops.maintain.history import append_history, read_history, report_path, slowdown, write_report
from fluxops.settings import Settings

LOG_MAX_AGE_DAYS = 30  # rotated ComfyUI logs older than this are removed
REPORTS_KEPT = 24  # two years of monthly reports


@dataclass(frozen=True)
class MaintainOptions:
    online: bool = False  # git fetch ComfyUI, check the token online
    health_check: bool = True
    log_max_age_days: int = LOG_MAX_AGE_DAYS


@dataclass(frozen=True)
class MaintainReport:
    started_at: str
    findings: tuple[CheckResult, ...]
    seconds: float
    seconds_per_image: float | None
    report_path: str = ""

    @property
    def failures(self) -> int:
        return sum(f.status is Status.FAIL for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.status is Status.WARN for f in self.findings)

    @property
    def ok(self) -> bool:
        """Nothing needs a person: no failure and no warning."""
        return not self.failures and not self.warnings

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {"started_at": self.started_at, "ok": self.ok, "exit_code": self.exit_code,
                "failures": self.failures, "warnings": self.warnings, "seconds": round(self.seconds, 2),
                "seconds_per_image": self.seconds_per_image, "report": self.report_path,
                "findings": [f.to_dict() for f in self.findings]}

    def summary_lines(self) -> list[str]:
        """The short text cron mails: one line per finding that needs attention, then the verdict."""
        lines = [f"[{f.status.value}] {f.id}: {f.summary}" + (f" -> {f.fix}" if f.fix else "")
                 for f in self.findings if f.status in (Status.FAIL, Status.WARN)]
        verdict = "all well" if self.ok else f"{self.failures} failed, {self.warnings} warning(s)"
        lines.append(f"fluxops maintain: {verdict} ({self.seconds:.0f} s); report: {self.report_path}")
        return lines


# -- steps -------------------------------------------------------------------------------------------------
def step_verify(settings: Settings, note: Callable[[str], None]) -> CheckResult:
    """Full re-verification (bit rot): blake3 against the hashes recorded when sha256 matched."""
    from fluxops.models.hashing import VerifyCache
    from fluxops.models.layout import extra_yamls_for
    from fluxops.models.manifest import load_manifest
    from fluxops.models.verify import State, verify

    manifest = load_manifest(settings.manifest)
    models_dir = settings.require_models_dir()
    report = verify(manifest, models_dir, VerifyCache(settings.verify_cache_path),
                    extra_yamls=extra_yamls_for(settings.comfyui_dir), full=True,
                    parallel_files=settings.parallel_files, on_note=note)
    bad = [f for f in report.files if f.state is not State.OK]
    facts = {"counts": report.counts(), "seconds": round(report.seconds, 2)}
    if not bad:
        return ok("models.verify", f"all {len(report.files)} files re-verified ({report.seconds:.1f} s)", **facts)
    details = [f"{f.dest}: {f.state.value}" + (f" ({f.detail})" if f.detail else "") for f in bad]
    hint = bad[0].hint or "fluxops verify"
    return fail("models.verify", f"{len(bad)} of {len(report.files)} files need attention (nothing was deleted)",
                hint, details, **facts)


def step_partials(settings: Settings) -> CheckResult:
    from fluxops.models.manifest import load_manifest
    from fluxops.setup.run import prune

    removed = prune(load_manifest(settings.manifest), settings.require_models_dir())
    freed = sum(size for _, size in removed)
    details = [f"removed {path}" for path, _ in removed]
    return ok("cleanup.partials", f"removed {len(removed)} orphaned partial download(s), {freed} bytes"
              if removed else "no orphaned partial downloads", details, removed=len(removed), bytes=freed)


def step_logs(settings: Settings, max_age_days: int, now: float) -> CheckResult:
    """Rotated ComfyUI logs and old maintenance reports beyond their age or count are removed."""
    from fluxops.comfy.logfile import LOG_NAME
    from fluxops.maintain.history import reports_dir

    removed: list[str] = []
    cutoff = now - max_age_days * 86400
    for path in sorted(settings.comfy_log_dir.glob(f"{LOG_NAME}.*")):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(str(path))
    reports = sorted(reports_dir(settings.maintain_dir).glob("*.json"))
    for old in reports[:-REPORTS_KEPT] if len(reports) > REPORTS_KEPT else []:
        for path in (old, old.with_suffix(".txt")):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(str(path))
    return ok("cleanup.logs", f"removed {len(removed)} old log/report file(s)" if removed
              else "no old logs to remove", [f"removed {p}" for p in removed], removed=len(removed))


def step_doctor(settings: Settings, online: bool, env: dict[str, str]) -> CheckResult:
    from fluxops.doctor import CHECK_IDS, DoctorOptions, run_doctor

    names = [c for c in CHECK_IDS if c != "models"]  # the full re-verification above replaces it
    report = run_doctor(settings, DoctorOptions(online=online), env, names)
    bad = [c for c in report.checks if c.status in (Status.FAIL, Status.WARN)]
    counts = report.counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    details = [f"[{c.status.value}] {c.id}: {c.summary}" + (f" -> {c.fix}" if c.fix else "") for c in bad]
    status = Status.FAIL if counts.get("fail") else Status.WARN if counts.get("warn") else Status.OK
    fix = "run `fluxops doctor` for the details and fixes" if bad else None
    return CheckResult("doctor", status, summary, tuple(details), fix,
                       {"checks": [c.to_dict() for c in report.checks]})


def step_updates(settings: Settings, online: bool) -> CheckResult:
    from fluxops.comfy.gitinfo import git_info

    if settings.comfyui_dir is None:
        return skip("comfyui.updates", "no ComfyUI dir configured", "set comfyui_dir (fluxops config)")
    info = git_info(settings.comfyui_dir, fetch=online)
    facts = info.to_dict()
    if not info.is_repo:
        return skip("comfyui.updates", f"cannot tell: {info.error}", None, **facts)
    short = (info.commit or "?")[:10]
    if info.error:
        return warn("comfyui.updates", f"at {short}; {info.error}", "check the network and `git remote -v`",
                    **facts)
    if info.upstream is None:
        return ok("comfyui.updates", f"at {short} on {info.branch} (no upstream branch to compare with)", **facts)
    fetched = "just fetched" if info.fetched else "as last fetched; --online fetches first"
    if info.behind:
        return warn("comfyui.updates", f"{info.behind} commit(s) behind {info.upstream} ({fetched})",
                    f"git -C {settings.comfyui_dir} pull, then `fluxops comfy stop` and `fluxops comfy start`",
                    **facts)
    return ok("comfyui.updates", f"up to date with {info.upstream} at {short} ({fetched})", **facts)


def step_gpu_health() -> CheckResult:
    from fluxops.machine.gpu import probe_gpus

    probe = probe_gpus()
    if not probe.loaded:
        return skip("gpu.health", f"no NVML: {probe.error or probe.error_kind}", "see the doctor's gpu.driver")
    problems = [p for device in probe.devices for p in device.health_problems()]
    details = [f"GPU {d.index} {d.name}: {d.temperature_c} °C, ECC uncorrected (lifetime) "
               f"{d.ecc_uncorrected_aggregate if d.ecc_uncorrected_aggregate is not None else 'n/a'}, "
               f"retired pages {d.retired_pages if d.retired_pages is not None else 'n/a'}" for d in probe.devices]
    facts = {"devices": [d.to_dict() for d in probe.devices]}
    if problems:
        return warn("gpu.health", problems[0], "check cooling and power (`nvidia-smi -q -d PERFORMANCE,"
                    "TEMPERATURE,ECC,PAGE_RETIREMENT`)", details + problems[1:], **facts)
    return ok("gpu.health", f"{len(probe.devices)} GPU(s) healthy", details, **facts)


def step_health_check(settings: Settings, note: Callable[[str], None]) -> CheckResult:
    """`generate --check` through the real stack; starts ComfyUI if needed and stops only what it started.
    Its time per image, when it has one, is in the facts (`seconds_per_image`)."""
    from fluxops.generate.plan import GenerateRequest, plan
    from fluxops.generate.run import execute
    from fluxops.generate.workflow import Overrides

    out_dir = settings.maintain_dir / "healthcheck"
    shutil.rmtree(out_dir, ignore_errors=True)  # only the last check's image is kept
    try:
        the_plan = plan(GenerateRequest.health_check(Overrides()), settings.manifest)
        outcome = execute(settings.replace(output_dir=out_dir), the_plan, stop_after=True, on_note=note)
    except FluxopsError as exc:
        return fail("healthcheck", f"the health check could not run: {exc.message}", exc.hint or "fluxops doctor",
                    code=exc.code)
    spi = outcome.result.seconds_per_image
    facts = {"seconds_per_image": spi, "images": outcome.result.images,
             "check": outcome.check.to_dict() if outcome.check else None}
    if not outcome.ok:
        reason = "; ".join(outcome.check.failures) if outcome.check else "no verdict"
        return fail("healthcheck", f"the image failed the check: {reason}", "fluxops generate --check -v", **facts)
    return ok("healthcheck", f"image OK in {spi:.2f} s" if spi else "image OK", **facts)


def step_trend(maintain_dir: Path, spi: float | None) -> CheckResult:
    if spi is None:
        return skip("healthcheck.trend", "no health-check time this run")
    found = slowdown(read_history(maintain_dir), spi)
    if found is None:
        return ok("healthcheck.trend", f"{spi:.2f} s/image, in line with recent runs", seconds_per_image=spi)
    median, ratio = found
    return warn("healthcheck.trend", f"health check took {spi:.2f} s/image, {ratio:.0%} of the recent median "
                f"{median:.2f} s", "look for other GPU processes, throttling or a ComfyUI update "
                "(`fluxops doctor gpu`)", seconds_per_image=spi, median=median, ratio=round(ratio, 3))


# -- the run ----------------------------------------------------------------------------------------------
def _steps(settings: Settings, options: MaintainOptions, env: dict[str, str], started: float,
           note: Callable[[str], None]) -> list[tuple[str, Callable[[], CheckResult]]]:
    """Each step's finding id and how to run it, in order (the health check's trend comes after it)."""
    return [
        ("models.verify", lambda: step_verify(settings, note)),
        ("cleanup.partials", lambda: step_partials(settings)),
        ("cleanup.logs", lambda: step_logs(settings, options.log_max_age_days, started)),
        ("doctor", lambda: step_doctor(settings, options.online, env)),
        ("comfyui.updates", lambda: step_updates(settings, options.online)),
        ("gpu.health", step_gpu_health),
        ("healthcheck", (lambda: step_health_check(settings, note)) if options.health_check
         else (lambda: skip("healthcheck", "skipped (--no-health-check)"))),
    ]


def _seconds_per_image(finding: CheckResult) -> float | None:
    spi = finding.facts.get("seconds_per_image")
    return float(spi) if isinstance(spi, (int, float)) else None


def run_maintain(settings: Settings, options: MaintainOptions, env: dict[str, str] | None = None,
                 on_finding: Callable[[CheckResult], None] | None = None,
                 on_note: Callable[[str], None] | None = None) -> MaintainReport:
    """Every step, each isolated like a doctor check (one that raises is its own failed finding), then the
    report and the history line, whatever the steps found."""
    from fluxops.locking import exclusive

    note = on_note or (lambda _t: None)
    env = dict(os.environ) if env is None else env
    started = time.time()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    findings: list[CheckResult] = []

    def record(step_id: str, run: Callable[[], CheckResult]) -> None:
        result = isolated(step_id, run)
        findings.append(result)
        if on_finding is not None:
            on_finding(result)

    with exclusive(settings.maintain_dir / "maintain.lock", "fluxops maintain", wait=False, on_wait=note,
                   busy=str(settings.state_dir)):
        for step_id, run in _steps(settings, options, env, started, note):
            record(step_id, run)
        spi = None
        if options.health_check:
            spi = _seconds_per_image(next(f for f in findings if f.id == "healthcheck"))
            record("healthcheck.trend", lambda: step_trend(settings.maintain_dir, spi))
        report = MaintainReport(datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
                                tuple(findings), time.time() - started, spi,
                                str(report_path(settings.maintain_dir, stamp)))
        path = write_report(settings.maintain_dir, stamp, report.to_dict(), "\n".join(report.summary_lines()) + "\n")
        append_history(settings.maintain_dir, {
            "started_at": report.started_at, "ok": report.ok, "exit_code": report.exit_code,
            "seconds_per_image": spi, "warnings": report.warnings, "failures": report.failures,
            "report": str(path)})
    return report
