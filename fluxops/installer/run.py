"""Carry out an install plan: checkout, venv, torch, ComfyUI's requirements, lock file.

One install per target at a time (an OS lock the kernel releases even after kill -9). The lock file says
"installing" from the moment the checkout exists, so an interrupted run is finished by the next one; each step
checks what is there first, so what was done is not done again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fluxops.errors import FluxopsError
from fluxops.installer import gitrepo, pyenv
from fluxops.installer.lockfile import write_lock
from fluxops.installer.plan import InstallPlan, InstallRequest, make_plan, torch_matches
from fluxops.installer.proc import OutputSink
from fluxops.locking import exclusive

StepSink = Callable[[str, str], None]  # (step name, what it is doing)


@dataclass(frozen=True)
class InstallResult:
    plan: InstallPlan
    ran: tuple[str, ...]
    installed: dict[str, str | None]
    python: Path  # the venv's interpreter
    lock_file: Path | None
    stash: str | None = None

    @property
    def nothing_done(self) -> bool:
        return not self.ran


def _python_record(plan: InstallPlan, python: Path) -> dict[str, str]:
    return {"path": str(python), "version": plan.python.version, "created_with": str(plan.request.creator)}


def _checkout(plan: InstallPlan, on_output: OutputSink | None) -> str | None:
    req = plan.request
    if plan.state == "new":
        gitrepo.clone_pinned(plan.git, req.pin, req.target, req.env, on_output)
        return None
    return gitrepo.move_to_pin(plan.git, req.pin, req.target, req.env, on_output, req.force)


def _venv(plan: InstallPlan, on_output: OutputSink | None) -> Path:
    req = plan.request
    venv_dir = req.target / "venv"
    python = pyenv.venv_python(venv_dir)
    if plan.step("venv").run:
        creator = pyenv.probe_python(req.creator, req.env)
        if creator is None:
            raise FluxopsError("install.venv_failed", f"{req.creator} no longer runs")
        pyenv.create_venv(creator, venv_dir, req.env, on_output)
        made = pyenv.probe_python(python, req.env)
        if made is None or not made.has_pip:
            raise FluxopsError("install.venv_failed", f"{venv_dir} was created but its Python has no pip")
    return python


def _torch(plan: InstallPlan, python: Path, on_output: OutputSink | None) -> dict[str, str | None]:
    req, choice = plan.request, plan.request.choice
    if plan.step("torch").run and choice.index_url:
        present = pyenv.installed_versions(python, req.env)
        replace = ["--force-reinstall"] if not choice.label and present.get("torch") else []
        pyenv.pip_install(python, ["--index-url", choice.index_url, *replace, *choice.requirements()], req.env,
                          on_output, f"torch from {choice.index_url}")
    installed = pyenv.installed_versions(python, req.env)
    if not torch_matches(choice, installed):
        raise FluxopsError("install.torch_unexpected", f"pip left {_describe(installed)} in the venv, not "
                           + " ".join(choice.requirements()))
    return installed


def _describe(installed: dict[str, str | None]) -> str:
    return ", ".join(f"{name} {version or '(none)'}" for name, version in installed.items())


def _requirements(plan: InstallPlan, python: Path, constraints: Path, on_output: OutputSink | None) -> None:
    req = plan.request
    requirements = req.target / "requirements.txt"
    if not requirements.is_file():
        raise FluxopsError("install.pip_failed", f"{requirements} is missing: the checkout is not ComfyUI")
    pyenv.pip_install(python, ["-r", str(requirements), "-c", str(constraints)], req.env, on_output,
                      "ComfyUI's requirements", cwd=req.target)
    after = pyenv.installed_versions(python, req.env)
    if not torch_matches(req.choice, after):
        raise FluxopsError("install.torch_unexpected", f"ComfyUI's requirements moved torch: {_describe(after)}")


def _carry_out(plan: InstallPlan, on_step: StepSink, on_output: OutputSink | None) -> InstallResult:
    req = plan.request
    ran, stash = [], None
    if plan.step("checkout").run:
        on_step("checkout", plan.step("checkout").detail)
        stash = _checkout(plan, on_output)
        ran.append("checkout")
    python = pyenv.venv_python(req.target / "venv")
    write_lock(req.target, "installing", req.pin, _python_record(plan, python), req.choice)
    if plan.step("venv").run:
        on_step("venv", plan.step("venv").detail)
        ran.append("venv")
    python = _venv(plan, on_output)
    if plan.step("torch").run:
        on_step("torch", plan.step("torch").detail)
        ran.append("torch")
    installed = _torch(plan, python, on_output)
    why = f"torch {req.choice.tag} from {req.choice.index_url}"
    constraints = pyenv.pin_torch(req.target / "venv", req.choice.pins(), why)
    on_step("requirements", plan.step("requirements").detail)
    _requirements(plan, python, constraints, on_output)
    ran.append("requirements")
    lock_file = write_lock(req.target, "complete", req.pin, _python_record(plan, python), req.choice, installed,
                           constraints, pyenv.pip_freeze(python, req.env))
    ran.append("lock")
    return InstallResult(plan, tuple(ran), installed, python, lock_file, stash)


def install(req: InstallRequest, mutex: Path, on_step: StepSink, on_output: OutputSink | None = None,
            on_plan: Callable[[InstallPlan], None] | None = None) -> InstallResult:
    """Plan, then do what the plan says; a plan with nothing to do returns at once."""
    with exclusive(mutex, "fluxops comfy install", wait=False, on_wait=lambda _: None, busy=str(req.target)):
        plan = make_plan(req)
        if on_plan is not None and not plan.nothing_to_do:
            on_plan(plan)
        python = pyenv.venv_python(req.target / "venv")
        if plan.nothing_to_do:
            return InstallResult(plan, (), plan.installed, python, None)
        return _carry_out(plan, on_step, on_output)
