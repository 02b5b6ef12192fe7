"""`fluxops comfy install [DIR]`: the pinned ComfyUI release with the torch build this machine can run.

The body of the command: choose the torch build (fluxops.machine.torchbuild), plan or carry out the install
(fluxops.installer), save `comfyui_dir` in the user's config file, then run doctor's `gpu` and `torch.cuda`
checks on the new install and print their verdicts.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxops.console import Output, Text, human_bytes
from fluxops.errors import ExitCode

if TYPE_CHECKING:
    from fluxops.installer.plan import InstallPlan
    from fluxops.installer.run import InstallResult
    from fluxops.machine.torchbuild import TorchChoice
    from fluxops.settings import Settings

DOCTOR_CHECKS = ("gpu", "torch")  # gpu.*, torch.cuda and torch.arch


def default_target(settings: Settings, env: dict[str, str]) -> Path:
    """DIR, else a comfyui_dir given by flag, environment or config file, else ~/ComfyUI."""
    if settings.comfyui_dir is not None and settings.sources.get("comfyui_dir") != "discovered":
        return settings.comfyui_dir
    return Path(env.get("HOME") or Path.home()) / "ComfyUI"


def machine_choice(settings: Settings, cpu: bool, torch_index: str | None) -> TorchChoice:
    from fluxops.machine.amdgpu import amd_rocm_present
    from fluxops.machine.gpu import probe_gpus
    from fluxops.machine.torchbuild import choose_torch, machine_facts

    facts = machine_facts(probe_gpus(), os.environ, amd_rocm=amd_rocm_present(), platform=sys.platform)
    return choose_torch(facts, force_cpu=cpu, index_override=torch_index, index_base=settings.torch_index_base)


def show_plan(out: Output, plan: InstallPlan) -> None:
    req, choice = plan.request, plan.request.choice
    out.line(f"ComfyUI {req.pin.short} from {req.pin.url} into {req.target} ({plan.state})", style="bold")
    out.line(f"  Python  {plan.python.version} ({plan.python.path})")
    out.line(f"  torch   {' '.join(choice.requirements())}")
    out.line(f"          from {choice.index_url}")
    out.line(f"          why: {choice.reason}")
    for skipped in choice.skipped:
        out.line(f"          not {skipped}", style="dim")
    for note in (*choice.notes, *plan.notes):
        out.line(f"  note: {note}", style="yellow")
    free = f", {human_bytes(plan.disk_free)} free" if plan.disk_free is not None else ""
    out.line(f"  disk    about {human_bytes(plan.disk_needed)} needed{free}")
    for step in plan.steps:
        out.line(f"  {'[run] ' if step.run else '[keep]'} {step.name:<12} {step.detail}",
                 style=None if step.run else "dim")


def run_doctor_checks(out: Output, settings: Settings, target: Path) -> tuple[bool, list[dict[str, Any]]]:
    """doctor's gpu and torch.cuda checks on the install; (torch usable as built, results)."""
    from fluxops.cli.doctor import result_lines
    from fluxops.doctor import DoctorOptions, run_doctor

    checked = settings.replace(comfyui_dir=target, comfyui_python=None)
    report = run_doctor(checked, DoctorOptions(), dict(os.environ), DOCTOR_CHECKS)
    previous = None
    for result in report.checks:
        for text, style in result_lines(result, False, result.group != previous):
            out.line(text, style=style or None)
        previous = result.group
    torch_check = next((r for r in report.checks if r.id == "torch.cuda"), None)
    usable = torch_check is None or torch_check.status.value != "fail"
    return usable, [r.to_dict() for r in report.checks]


def _pip_line(out: Output) -> Any:
    def show(line: str) -> None:
        if line.strip():
            out.err.print(Text("    " + line, style="dim"))

    return show


def carry_out(out: Output, settings: Settings, plan_request: Any) -> InstallResult:
    from fluxops.installer.run import install

    def step(name: str, detail: str) -> None:
        out.err.print(Text(f"{name}: ", style="bold") + Text(detail))

    return install(plan_request, settings.comfy_install_lock_path, step, _pip_line(out),
                   on_plan=lambda plan: show_plan(out, plan))


def report(out: Output, settings: Settings, result: InstallResult, seconds: float, saved: Path | None) -> int:
    plan = result.plan
    if result.nothing_done:
        out.line(f"nothing to do: {plan.request.target} is at {plan.request.pin.short} with "
                 + ", ".join(f"{k} {v}" for k, v in result.installed.items()) + f" ({seconds:.1f} s)")
    else:
        out.line(f"installed ComfyUI {plan.request.pin.short} in {plan.request.target} ({seconds:.0f} s): "
                 + ", ".join(f"{k} {v}" for k, v in result.installed.items()), style="green")
        if result.stash:
            out.note(f"your local changes are kept in git stash: \"{result.stash}\" (git stash list)")
        out.note(f"lock file: {result.lock_file}")
    if saved is not None:
        out.note(f"comfyui_dir = {plan.request.target} saved in {saved}")
    usable, checks = run_doctor_checks(out, settings, plan.request.target)
    cpu = plan.request.choice.tag == "cpu"
    out.emit({"target": str(plan.request.target), "plan": plan.to_dict(), "ran": list(result.ran),
              "installed": result.installed, "lock_file": str(result.lock_file) if result.lock_file else None,
              "stash": result.stash, "config_file": str(saved) if saved else None, "doctor": checks,
              "seconds": round(seconds, 3)}, ok=usable or cpu)
    return ExitCode.OK if usable or cpu else ExitCode.FAILURE


def install_body(out: Output, settings: Settings, *, directory: Path | None, python: Path | None,
                 torch_index: str | None, cpu: bool, upgrade: bool, force: bool, dry_run: bool) -> int:
    from fluxops.installer.plan import InstallRequest, make_plan
    from fluxops.models.manifest import load_manifest
    from fluxops.settings import save_setting

    env = dict(os.environ)
    target = (directory or default_target(settings, env)).expanduser().absolute()
    if settings.discovered and settings.comfyui_dir is not None and settings.comfyui_dir != target:
        out.note(f"an existing ComfyUI is at {settings.comfyui_dir} ({settings.discovered}); this installs "
                 f"another at {target} (pass that folder to use it)")
    pin = load_manifest(settings.manifest).require_comfyui()
    choice = machine_choice(settings, cpu, torch_index)
    request = InstallRequest(target, pin, python or Path(sys.executable), choice, env, upgrade, force)
    if dry_run:
        plan = make_plan(request)
        show_plan(out, plan)
        out.emit({"dry_run": True, "plan": plan.to_dict()})
        return ExitCode.OK
    started = time.monotonic()
    result = carry_out(out, settings, request)
    saved = save_setting(settings, "comfyui_dir", str(target))
    return report(out, settings, result, time.monotonic() - started, saved)
