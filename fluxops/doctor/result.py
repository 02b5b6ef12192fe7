"""What a doctor check returns, and the report of a whole run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from fluxops.errors import FluxopsError


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    """One finding: a stable id, a status, a one-line summary, indented detail lines, the fix, and the facts
    (machine-readable) it was based on. Anything not ok carries a fix."""

    id: str
    status: Status
    summary: str
    details: tuple[str, ...] = ()
    fix: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "status": self.status.value,
            "summary": self.summary,
            "details": list(self.details),
            "fix": self.fix,
            "facts": self.facts,
        }


def ok(check_id: str, summary: str, details: tuple[str, ...] | list[str] = (), /, **facts: Any) -> CheckResult:
    return CheckResult(check_id, Status.OK, summary, tuple(details), None, facts)


def warn(
    check_id: str, summary: str, fix: str, details: tuple[str, ...] | list[str] = (), /, **facts: Any
) -> CheckResult:
    return CheckResult(check_id, Status.WARN, summary, tuple(details), fix, facts)


def fail(
    check_id: str, summary: str, fix: str, details: tuple[str, ...] | list[str] = (), /, **facts: Any
) -> CheckResult:
    return CheckResult(check_id, Status.FAIL, summary, tuple(details), fix, facts)


def skip(check_id: str, summary: str, fix: str | None = None, /, **facts: Any) -> CheckResult:
    return CheckResult(check_id, Status.SKIP, summary, (), fix, facts)


def isolated(check_id: str, run: Callable[[], CheckResult]) -> CheckResult:
    """Run one doctor check or maintain step so that whatever it raises becomes its own failed finding: one
    broken check must not hide the others', nor stop a run before its report. Ctrl-C still stops the run."""
    try:
        return run()
    except FluxopsError as exc:
        return CheckResult(check_id, Status.FAIL, exc.message, fix=exc.hint, facts={"code": exc.code})
    except Exception as exc:
        return CheckResult(
            check_id,
            Status.FAIL,
            f"the check itself failed: {exc.__class__.__name__}: {exc}",
            fix="report this with `fluxops doctor --report doctor.txt` attached",
        )


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[CheckResult, ...]
    strict: bool = False
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for check in self.checks:
            counts[check.status.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        bad = {Status.FAIL, Status.WARN} if self.strict else {Status.FAIL}
        return not any(c.status in bad for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "strict": self.strict,
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "checks": [c.to_dict() for c in self.checks],
        }
