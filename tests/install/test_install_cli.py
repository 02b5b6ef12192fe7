"""`fluxops comfy install` end to end: real git, a real venv, real pip, nothing but 127.0.0.1.

One install on a box with an R580 driver and an RTX 4090 (the cu130 build) is made once and read by several
tests; the tests that change an install make their own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.comfyui_repo import ComfyRepo
from tests.fakes.pyindex import IndexServer
from tests.helpers import free_port
from tests.install.harness import data, git_out, install_env, lock, point_at, run_cli, signal_tree, start_cli

pytestmark = [pytest.mark.network, pytest.mark.slow,
              pytest.mark.skipif(os.name == "nt", reason="POSIX signals and venv layout (bin/python)")]


@dataclass(frozen=True)
class Installed:
    root: Path
    target: Path
    env: dict[str, str]
    first: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def gpu_install(tmp_path_factory: pytest.TempPathFactory, pyindex_tree: Path, comfy_repo: ComfyRepo
                ) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("gpu-install")
    with IndexServer(pyindex_tree) as server:
        env = install_env(root, server, comfy_repo, "driver580_rtx4090")
        target = root / "home" / "ComfyUI"
        first = run_cli(env, "comfy", "install", "--json")  # DIR defaults to ~/ComfyUI
        yield Installed(root, target, env, first)


def test_install_gets_the_build_the_driver_and_gpu_run(gpu_install: Installed, comfy_repo: ComfyRepo) -> None:
    done = gpu_install.first
    assert done.returncode == 0, done.stderr
    got = data(done)
    assert got["ran"] == ["checkout", "venv", "torch", "requirements", "lock"]
    assert got["installed"] == {"torch": "2.14.1+cu130", "torchvision": "0.29.1+cu130", "torchaudio": "2.11.0+cu130"}
    assert got["plan"]["torch"]["variant"] == "cu130" and "RTX 4090" in got["plan"]["torch"]["reason"]
    target = gpu_install.target
    assert git_out(target, "rev-parse", "HEAD") == comfy_repo.commits["v0.0.1"]
    assert git_out(target, "status", "--porcelain") == ""
    recorded = lock(target)
    assert recorded["state"] == "complete" and recorded["comfyui"]["commit"] == comfy_repo.commits["v0.0.1"]
    assert recorded["torch"]["variant"] == "cu130" and "torch==2.14.1+cu130" in recorded["pip_freeze"]
    assert recorded["python"]["path"] == str(target / "venv" / "bin" / "python")
    # It ends with doctor's verdicts on the new install: the cu130 torch sees the GPU.
    checks = {c["id"]: c for c in got["doctor"]}
    assert checks["torch.cuda"]["status"] == "ok"
    assert checks["torch.cuda"]["facts"]["torch"] == "2.14.1+cu130" and checks["torch.cuda"]["facts"]["cuda"] == "13.0"
    assert checks["gpu.driver"]["status"] == "ok"
    # ...and later commands need no flag: comfyui_dir is in the user's config file.
    config_file = Path(gpu_install.env["XDG_CONFIG_HOME"]) / "fluxops" / "fluxops.toml"
    assert f'comfyui_dir = "{target}"' in config_file.read_text(encoding="utf-8")
    assert f"saved in {config_file}" in done.stderr


def test_a_rerun_does_nothing_and_says_so(gpu_install: Installed) -> None:
    started = time.monotonic()
    again = run_cli(gpu_install.env, "comfy", "install", str(gpu_install.target))
    elapsed = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout and "torch 2.14.1+cu130" in again.stdout
    assert "torch.cuda" in again.stdout  # doctor's verdicts still end the run
    print(f"no-op rerun: {elapsed:.2f} s")


def test_doctor_and_config_see_the_install(gpu_install: Installed) -> None:
    doctor = run_cli(gpu_install.env, "doctor", "torch", "--json")
    checks = {c["id"]: c for c in data(doctor)["checks"]}
    assert checks["torch.cuda"]["facts"]["torch"] == "2.14.1+cu130"
    assert checks["torch.arch"]["status"] == "ok" and "sm_86" in checks["torch.arch"]["facts"]["arch_list"]
    shown = data(run_cli(gpu_install.env, "config", "--json"))
    assert shown["comfyui_dir"]["value"] == str(gpu_install.target)
    assert shown["comfyui_dir"]["source"].startswith("config file")


def test_the_installed_comfyui_starts_with_no_flag(gpu_install: Installed, no_leftover_processes: Path) -> None:
    env = {**gpu_install.env, "FAKE_COMFYUI_PID_DIR": str(no_leftover_processes)}
    started = run_cli(env, "comfy", "start", "--port", str(free_port()))  # comfyui_dir from the config file
    try:
        assert started.returncode == 0, started.stderr
        assert f"{gpu_install.target / 'venv' / 'bin' / 'python'} {gpu_install.target / 'main.py'}" in started.stderr
    finally:
        assert run_cli(env, "comfy", "stop").returncode == 0


def test_a_custom_node_cannot_replace_the_torch(gpu_install: Installed, index_server: IndexServer,
                                                tmp_path: Path) -> None:
    # The venv's pip.conf names the constraints file (PIP_CONSTRAINT would override it, so it is dropped).
    env = {k: v for k, v in point_at(gpu_install.env, index_server, tmp_path).items() if k != "PIP_CONSTRAINT"}
    python = str(gpu_install.target / "venv" / "bin" / "python")
    node = subprocess.run([python, "-m", "pip", "install", "fluxops-test-audio-node"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert node.returncode != 0 and "torchaudio" in node.stdout + node.stderr
    kept = subprocess.run([python, "-c", "import torchaudio; print(torchaudio.__version__)"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert kept.stdout.strip() == "2.11.0+cu130"


def test_dry_run_shows_the_plan_and_changes_nothing(tmp_path: Path, index_server: IndexServer,
                                                    comfy_repo: ComfyRepo) -> None:
    env = install_env(tmp_path, index_server, comfy_repo, "driver570_rtx3090")
    target = tmp_path / "srv" / "ComfyUI"
    done = run_cli(env, "comfy", "install", str(target), "--dry-run")
    assert done.returncode == 0, done.stderr
    plan = done.stdout
    assert f"v0.0.1 ({comfy_repo.commits['v0.0.1'][:12]})" in plan
    assert "torch==2.14.1+cu126 torchvision==0.29.1+cu126 torchaudio==2.11.0+cu126" in plan
    assert f"{index_server.whl}/cu126" in plan
    assert "runs CUDA up to 12.8" in plan and "RTX 3090" in plan  # and why
    assert "cu130: needs a driver for CUDA 13.0" in plan
    assert "disk" in plan and "needed" in plan
    assert not target.exists() and not (tmp_path / "srv").exists()
    assert not (Path(env["XDG_CONFIG_HOME"]) / "fluxops" / "fluxops.toml").exists()


def test_no_build_fits_a_box_whose_gpus_no_build_covers(tmp_path: Path, index_server: IndexServer,
                                                        comfy_repo: ComfyRepo) -> None:
    env = install_env(tmp_path, index_server, comfy_repo, "driver580_gtx1080_rtx5090")
    done = run_cli(env, "comfy", "install", "--dry-run")
    assert done.returncode == 1
    assert "GTX 1080 (sm_61)" in done.stderr and "RTX 5090 (sm_120)" in done.stderr and "--torch-index" in done.stderr


def test_a_moved_tag_is_refused(tmp_path: Path, index_server: IndexServer, comfy_repo: ComfyRepo) -> None:
    moved = comfy_repo.copy(tmp_path / "moved.git")
    moved.git("tag", "--force", "v0.0.1", moved.commits["v0.0.2"])
    env = install_env(tmp_path, index_server, comfy_repo, "driver580_rtx4090")
    env["FLUXOPS_MANIFEST"] = env["FLUXOPS_MANIFEST"].replace(str(comfy_repo.path), str(moved.path))
    manifest = Path(env["FLUXOPS_MANIFEST"])
    manifest.write_text(manifest.read_text().replace(comfy_repo.url, moved.url))
    target = tmp_path / "ComfyUI"
    done = run_cli(env, "comfy", "install", str(target), "--json")
    assert done.returncode == 1
    error = data(done)["error"] if "error" in data(done) else data(done)
    assert error["code"] == "install.pin_mismatch"
    assert comfy_repo.commits["v0.0.2"] in error["message"] and "moved" in error["message"]
    assert not target.exists() and not (tmp_path / ".ComfyUI.fluxops-clone").exists()


def test_no_git_says_how_to_install_it(tmp_path: Path, index_server: IndexServer, comfy_repo: ComfyRepo) -> None:
    env = install_env(tmp_path, index_server, comfy_repo, "driver580_rtx4090")
    env["PATH"] = str(tmp_path / "bin-without-git")
    done = run_cli(env, "comfy", "install", str(tmp_path / "ComfyUI"))
    assert done.returncode == 1
    assert "git is not installed" in done.stderr
    assert "fix: install it:" in done.stderr and "git" in done.stderr.split("fix:")[1]
    assert "Traceback" not in done.stderr


def _wait_held(server: IndexServer, proc: subprocess.Popen[str]) -> None:
    if not server.held.wait(120):
        proc.kill()
        pytest.fail("pip never asked for the held file: " + (proc.communicate()[1] or ""))


def test_an_interrupted_install_completes_on_the_next_run(tmp_path: Path, index_server: IndexServer,
                                                           comfy_repo: ComfyRepo) -> None:
    env = install_env(tmp_path, index_server, comfy_repo, "no_driver")  # no GPU: the CPU build
    target = tmp_path / "ComfyUI"
    index_server.hold("/files/cpu/torchaudio")  # Ctrl-C while pip fetches the torch build
    proc = start_cli(env, "comfy", "install", str(target))
    _wait_held(index_server, proc)
    signal_tree(proc, signal.SIGINT)
    index_server.release()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again" in err
    assert lock(target)["state"] == "installing"

    index_server.hold("/files/pypi/torchsde")  # kill -9 (fluxops and pip) while pip fetches a requirement
    proc = start_cli(env, "comfy", "install", str(target))
    _wait_held(index_server, proc)
    signal_tree(proc, signal.SIGKILL)
    proc.communicate(timeout=60)
    index_server.release()
    assert lock(target)["state"] == "installing"

    done = run_cli(env, "comfy", "install", str(target), "--json")
    assert done.returncode == 0, done.stderr
    got = data(done)
    assert got["ran"] == ["requirements", "lock"]  # checkout, venv and torch were already done
    assert got["installed"]["torch"] == "2.14.1+cpu" and lock(target)["state"] == "complete"
    checks = {c["id"]: c for c in got["doctor"]}
    assert checks["torch.cuda"]["facts"]["torch"] == "2.14.1+cpu" and checks["torch.cuda"]["facts"]["cuda"] is None


def test_upgrade_refuses_local_changes_unless_forced(tmp_path: Path, index_server: IndexServer,
                                                      comfy_repo: ComfyRepo) -> None:
    env = install_env(tmp_path, index_server, comfy_repo, "driver570_rtx3090")
    target = tmp_path / "ComfyUI"
    assert run_cli(env, "comfy", "install", str(target)).returncode == 0
    (target / "folder_paths.py").write_text("# my local change\n")
    newer = install_env(tmp_path, index_server, comfy_repo, "driver570_rtx3090", tag="v0.0.2")

    plain = run_cli(newer, "comfy", "install", str(target))
    assert plain.returncode == 1 and "--upgrade" in plain.stderr
    assert f"the manifest pins v0.0.2 ({comfy_repo.commits['v0.0.2'][:12]})" in plain.stderr

    refused = run_cli(newer, "comfy", "install", str(target), "--upgrade")
    assert refused.returncode == 1 and "local changes (folder_paths.py)" in refused.stderr
    assert git_out(target, "rev-parse", "HEAD") == comfy_repo.commits["v0.0.1"]

    forced = run_cli(newer, "comfy", "install", str(target), "--upgrade", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert git_out(target, "rev-parse", "HEAD") == comfy_repo.commits["v0.0.2"]
    assert "git stash" in forced.stderr and "fluxops comfy install --force" in git_out(target, "stash", "list")
    assert data(forced)["installed"]["torch"] == "2.14.1+cu126"  # the torch build did not change
    assert "torch" not in data(forced)["ran"]


def test_cpu_and_torch_index_override_the_choice_and_an_old_python_is_refused(
        tmp_path: Path, index_server: IndexServer, comfy_repo: ComfyRepo) -> None:
    env = install_env(tmp_path, index_server, comfy_repo, "driver580_rtx4090")
    cpu = data(run_cli(env, "comfy", "install", "--dry-run", "--cpu", "--json"))["plan"]["torch"]
    assert (cpu["variant"], cpu["source"], cpu["requirements"][0]) == ("cpu", "--cpu", "torch==2.14.1+cpu")
    mirror = f"{index_server.url}/mirror/whl/cu126"
    chosen = data(run_cli(env, "comfy", "install", "--dry-run", "--torch-index", mirror, "--json"))["plan"]["torch"]
    assert (chosen["variant"], chosen["index_url"], chosen["source"]) == ("cu126", mirror, "--torch-index")
    both = run_cli(env, "comfy", "install", "--dry-run", "--cpu", "--torch-index", mirror)
    assert both.returncode == 2 and "--cpu and --torch-index" in both.stderr

    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\necho \'{"version": "3.9.18", "executable": "/usr/bin/python3.9", "venv": true, '
                   '"pip": true}\'\n')
    old.chmod(0o755)
    refused = run_cli(env, "comfy", "install", "--dry-run", "--python", str(old))
    assert refused.returncode == 2
    assert "is Python 3.9.18; torch 2.14.1 needs Python >=3.10,<3.15" in refused.stderr
