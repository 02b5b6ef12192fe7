"""The installer core with real git, a real venv and real pip against the local indexes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fluxops.errors import FluxopsError
from fluxops.installer.gitrepo import ComfyPin
from fluxops.installer.plan import InstallRequest, make_plan
from fluxops.installer.run import InstallResult, install
from fluxops.machine.torchbuild import GpuArch, MachineFacts, choose_torch
from tests.fakes.comfyui_repo import ComfyRepo
from tests.fakes.pyindex import IndexServer
from tests.install.conftest import pip_env

RTX4090_ON_580 = MachineFacts(gpus=(GpuArch(0, "NVIDIA GeForce RTX 4090", (8, 9)),), cuda_ceiling=(13, 0),
                              driver_version="580.82.07")


def request(repo: ComfyRepo, server: IndexServer, tmp: Path, tag: str = "v0.0.1", **options: object
            ) -> InstallRequest:
    pin = ComfyPin(repo.url, tag, repo.commits[tag])
    choice = choose_torch(RTX4090_ON_580, index_base=server.whl)
    fields: dict = {"target": tmp / "ComfyUI", "pin": pin, "creator": Path(sys.executable), "choice": choice,
                    "env": pip_env(server, tmp)}
    fields.update(options)
    return InstallRequest(**fields)


def run(req: InstallRequest, tmp: Path) -> InstallResult:
    return install(req, tmp / "install.lock", lambda step, detail: None)


def test_install_rerun_and_the_torch_pin(comfy_repo: ComfyRepo, index_server: IndexServer, tmp_path: Path) -> None:
    req = request(comfy_repo, index_server, tmp_path)
    done = run(req, tmp_path)
    assert done.ran == ("checkout", "venv", "torch", "requirements", "lock")
    assert done.installed == {"torch": "2.14.1+cu130", "torchvision": "0.29.1+cu130", "torchaudio": "2.11.0+cu130"}
    target = req.target
    assert subprocess.run(["git", "-C", str(target), "rev-parse", "HEAD"], capture_output=True, text=True
                          ).stdout.strip() == comfy_repo.commits["v0.0.1"]
    assert subprocess.run(["git", "-C", str(target), "status", "--porcelain"], capture_output=True, text=True
                          ).stdout == ""  # the lock file and the venv do not show as changes
    assert not (tmp_path / ".ComfyUI.fluxops-clone").exists()

    again = run(req, tmp_path)
    assert again.nothing_done and again.plan.state == "current"

    # A custom node that wants a newer torchaudio cannot move the pinned packages: the venv's pip.conf names
    # the constraints file (PIP_CONSTRAINT would override it, so it is not set here).
    env = {k: v for k, v in req.env.items() if k != "PIP_CONSTRAINT"}
    custom = subprocess.run([str(done.python), "-m", "pip", "install", "fluxops-test-audio-node"], env=env,
                            capture_output=True, text=True)
    assert custom.returncode != 0 and "torchaudio" in custom.stdout + custom.stderr
    assert make_plan(req).installed["torchaudio"] == "2.11.0+cu130"


def test_a_moved_tag_is_refused_and_leaves_nothing(comfy_repo: ComfyRepo, index_server: IndexServer,
                                                   tmp_path: Path) -> None:
    moved = comfy_repo.copy(tmp_path / "moved.git")
    moved.git("tag", "--force", "v0.0.1", moved.commits["v0.0.2"])
    req = request(moved, index_server, tmp_path)
    with pytest.raises(FluxopsError) as caught:
        run(req, tmp_path)
    assert caught.value.code == "install.pin_mismatch"
    assert moved.commits["v0.0.2"] in caught.value.message and moved.commits["v0.0.1"] in caught.value.message
    assert not req.target.exists() and not (tmp_path / ".ComfyUI.fluxops-clone").exists()


def test_no_git_names_the_install_command(comfy_repo: ComfyRepo, index_server: IndexServer, tmp_path: Path) -> None:
    env = {**pip_env(index_server, tmp_path), "PATH": str(tmp_path / "no-tools")}
    with pytest.raises(FluxopsError) as caught:
        make_plan(request(comfy_repo, index_server, tmp_path, env=env))
    assert caught.value.code == "install.git_missing"
    assert "install" in (caught.value.hint or "")
