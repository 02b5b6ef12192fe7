"""What `fluxops comfy install` would do to a folder: each step run or kept, and why. Changes nothing.

States of the target: ``new`` (absent or empty), ``resume`` (an install that did not finish), ``current``
(finished, and matches the manifest's pin and this machine's torch choice), ``outdated`` (finished, but the pin
or the torch choice moved on: --upgrade), ``foreign`` (a checkout fluxops did not install: --upgrade adopts it).
Missing pieces of an install (a deleted venv, torch gone) are put back without --upgrade.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.installer import gitrepo, pyenv
from fluxops.installer.lockfile import read_lock
from fluxops.machine.torchbuild import TorchChoice
from fluxops.models.manifest import ComfyPin

GIB = 1024**3
# Rough space each step takes (the torch build's own figure is in the torch table): a shallow checkout,
# an empty venv, and ComfyUI's other requirements (transformers, scipy, av, the frontend package...).
CHECKOUT_BYTES = GIB // 10
VENV_BYTES = GIB // 20
REQUIREMENTS_BYTES = 3 * GIB // 2


@dataclass(frozen=True)
class InstallRequest:
    target: Path
    pin: ComfyPin
    creator: Path  # the interpreter that creates the venv
    choice: TorchChoice
    env: Mapping[str, str]
    upgrade: bool = False
    force: bool = False


@dataclass(frozen=True)
class Step:
    name: str  # checkout, venv, torch, requirements, lock
    run: bool
    detail: str


@dataclass(frozen=True)
class InstallPlan:
    request: InstallRequest
    state: str
    git: str
    head: str | None
    python: pyenv.PythonInfo  # the venv's interpreter when it works, else the one that will create it
    venv_ok: bool
    installed: dict[str, str | None]
    steps: tuple[Step, ...]
    differences: tuple[str, ...] = ()
    disk_needed: int = 0
    disk_free: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def nothing_to_do(self) -> bool:
        return not any(step.run for step in self.steps)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        req = self.request
        return {
            "target": str(req.target), "state": self.state, "nothing_to_do": self.nothing_to_do,
            "comfyui": {"url": req.pin.url, "tag": req.pin.tag, "commit": req.pin.commit, "head": self.head},
            "python": {"path": str(self.python.path), "version": self.python.version},
            "torch": {**req.choice.to_dict(), "installed": self.installed},
            "steps": [{"name": s.name, "run": s.run, "detail": s.detail} for s in self.steps],
            "differences": list(self.differences), "disk_needed_bytes": self.disk_needed,
            "disk_free_bytes": self.disk_free, "notes": list(self.notes),
        }


def torch_matches(choice: TorchChoice, installed: Mapping[str, str | None]) -> bool:
    """Whether the installed three packages are the chosen build (by label where the index has labels)."""
    wanted = [r.split("==", 1)[1] for r in choice.requirements()]
    got = [installed.get(name) for name in pyenv.TORCH_PACKAGES]
    if choice.label:
        return got == wanted
    return all(g is not None and g.split("+", 1)[0] == w for g, w in zip(got, wanted, strict=True))


def _installed_text(installed: Mapping[str, str | None]) -> str:
    if not installed.get("torch"):
        return "no torch"
    return ", ".join(f"{name} {version}" for name, version in installed.items() if version)


def _target_state(git: str, req: InstallRequest) -> tuple[str, str | None, dict[str, Any] | None]:
    target = req.target
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return "new", None, None
    if not target.is_dir() or not gitrepo.is_checkout(git, target, req.env):
        raise FluxopsError("install.dir_not_empty", f"{target} exists and is not a git checkout of ComfyUI")
    lock = read_lock(target)
    head = gitrepo.head(git, target, req.env)
    if lock is None:
        return "foreign", head, None
    return ("resume" if lock.get("state") != "complete" else "current"), head, lock


def _python(req: InstallRequest, venv_ok: pyenv.PythonInfo | None) -> pyenv.PythonInfo:
    python = venv_ok or pyenv.probe_python(req.creator, req.env)
    if python is None:
        raise FluxopsError("install.python_unsupported", f"{req.creator} does not run as a Python interpreter",
                           hint="pass --python PATH with a Python that ComfyUI supports")
    release = req.choice.variant.release if req.choice.variant else None
    needs = [(req.pin.python, f"ComfyUI {req.pin.tag}")]
    if release is not None:
        needs.append((release.python, f"torch {release.torch}"))
    pyenv.check_supported(python, needs)
    return python


def _differences(req: InstallRequest, state: str, head: str | None, lock: dict[str, Any] | None,
                 installed: Mapping[str, str | None]) -> list[str]:
    """What keeps a finished or foreign install from matching (each needs --upgrade)."""
    if state in ("new", "resume"):
        return []
    found = []
    if head != req.pin.commit:
        found.append(f"the checkout is at {head[:12] if head else 'no commit'}, the manifest pins {req.pin.short}")
    if installed.get("torch") and not torch_matches(req.choice, installed):
        found.append(f"{_installed_text(installed)} installed, this machine's choice is "
                     + " ".join(req.choice.requirements()) + f" from {req.choice.index_url}")
    if state == "current" and lock is not None and not found:
        recorded = lock.get("torch") or {}
        same = (recorded.get("variant") == req.choice.tag if req.choice.tag != "index"
                else recorded.get("index_url") == req.choice.index_url)
        if not same:
            found.append(f"torch {recorded.get('variant')} came from {recorded.get('index_url')}, this machine's "
                         f"choice is {req.choice.tag} from {req.choice.index_url}")
    return found


def _steps(req: InstallRequest, state: str, head: str | None, venv_ok: bool,
           torch_ok: bool) -> tuple[Step, ...]:
    pin, choice = req.pin, req.choice
    venv_dir = req.target / "venv"
    if state == "new":
        checkout = Step("checkout", True, f"clone {pin.short} from {pin.url}")
    elif head == pin.commit:
        checkout = Step("checkout", False, f"at {pin.short} already")
    else:
        checkout = Step("checkout", True, f"move from {head[:12] if head else 'no commit'} to {pin.short}")
    venv = Step("venv", not venv_ok, f"create {venv_dir}" if not venv_ok else f"keep {venv_dir}")
    torch = Step("torch", not torch_ok, (" ".join(choice.requirements()) + f" from {choice.index_url}")
                 if not torch_ok else "the chosen build is installed")
    changed = checkout.run or venv.run or torch.run or state != "current"
    requirements = Step("requirements", changed, f"pip install -r {req.target / 'requirements.txt'}, torch pinned"
                        if changed else "installed")
    lock = Step("lock", changed, f"record the install in {req.target / gitrepo.LOCK_NAME}" if changed
                else "recorded")
    return checkout, venv, torch, requirements, lock


def _disk(req: InstallRequest, steps: tuple[Step, ...]) -> tuple[int, int | None]:
    """Bytes the running steps add (ComfyUI's other requirements only into a new venv), and bytes free."""
    runs = {s.name for s in steps if s.run}
    needed = ((CHECKOUT_BYTES if "checkout" in runs else 0) + (VENV_BYTES + REQUIREMENTS_BYTES if "venv" in runs
              else 0) + (int(req.choice.variant.installed_gib * GIB) if "torch" in runs and req.choice.variant else 0))
    probe = req.target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return needed, shutil.disk_usage(probe).free
    except OSError:
        return needed, None


def make_plan(req: InstallRequest) -> InstallPlan:
    """Look at the target and say what each step would do; raises what the install would refuse."""
    if req.choice.variant is None:
        raise FluxopsError("install.no_torch_build", req.choice.problem or "no torch build fits this machine")
    git = gitrepo.find_git(req.env)
    state, head, lock = _target_state(git, req)
    venv_python = pyenv.venv_python(req.target / "venv")
    venv_info = pyenv.probe_python(venv_python, req.env) if venv_python.exists() else None
    venv_ok = venv_info is not None and venv_info.has_pip
    python = _python(req, venv_info if venv_ok else None)
    installed = pyenv.installed_versions(venv_python, req.env) if venv_ok else dict.fromkeys(pyenv.TORCH_PACKAGES)
    differences = _differences(req, state, head, lock, installed)
    if state == "current" and differences:
        state = "outdated"
    if differences and not req.upgrade:
        whose = "fluxops did not install it" if state == "foreign" else "it differs from what this run would install"
        raise FluxopsError("install.needs_upgrade", f"{req.target} holds a ComfyUI, but {whose}: "
                           + "; ".join(differences))
    steps = _steps(req, state, head, venv_ok, bool(installed.get("torch")) and torch_matches(req.choice, installed))
    needed, free = _disk(req, steps)
    notes = [] if free is None or free >= needed else [
        f"only {free / GIB:.1f} GiB free where {needed / GIB:.1f} GiB is needed (plus pip's download cache)"]
    return InstallPlan(req, state, git, head, python, venv_ok, installed, steps, tuple(differences), needed, free,
                       tuple(notes))
