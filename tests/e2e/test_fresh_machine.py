"""The whole flow as a new user runs it: fluxops installed into a fresh virtualenv the way the README says,
then every command as a subprocess against the fake Hub, the fake ComfyUI and the fake NVML."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.fakes.hub import FakeHub
from tests.fakes.models import FakeModel, small_models
from tests.fakes.nvml_seam import NVML_FAKE_DIR, scenario_path
from tests.helpers import REPO, free_port, machine_before_setup

pytestmark = pytest.mark.e2e
_SKIP = (".git", ".venv*", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
         ".mypy_cache", ".ruff_cache", "outputs")


def readme_install_command() -> str:
    """The README's first command: the one that installs fluxops (and then runs it)."""
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        if "pip install ." in line:
            return line.strip()
    raise AssertionError("the README has no `pip install .` command")


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the project and the README's first command run in it (creating .venv and installing)."""
    root = tmp_path_factory.mktemp("fresh")
    checkout = root / "fluxops"
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(*_SKIP))
    command = readme_install_command()
    assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install . && fluxops ")
    # The whole line, as a user types it (its last step, the first fluxops run, is checked below).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLUXOPS_", "HF_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if "venv" not in p)
    env["HOME"] = str(root / "home")
    env["FLUXOPS_STATE_DIR"] = str(root / "state")
    proc = subprocess.run(["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True,
                          timeout=600)
    venv = checkout / ".venv"
    assert (venv / "bin" / "fluxops").is_file(), proc.stdout[-2000:] + proc.stderr[-4000:]
    # On this machine (no NVIDIA driver) the first run ends in a doctor report that says so, without a traceback.
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "gpu.driver" in proc.stdout and "Traceback" not in proc.stderr
    assert "Doctor found problems" in proc.stdout
    yield venv


class Flow:
    def __init__(self, venv: Path, tmp_path: Path, env: dict[str, str]):
        self.venv, self.tmp_path, self.env = venv, tmp_path, env

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.venv / "bin" / "fluxops"), *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout, cwd=self.tmp_path)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc


def test_the_whole_flow_from_a_fresh_install(fresh_venv: Path, tmp_path: Path, isolated: dict[str, str]) -> None:
    hub = FakeHub()
    try:
        models = small_models()
        manifest, comfyui = machine_before_setup(tmp_path, hub, models)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLUXOPS_", "PYTHON", "VIRTUAL_ENV"))}
        env.update({"FLUXOPS_COMFYUI_DIR": str(comfyui), "FLUXOPS_MANIFEST": str(manifest),
                    "FLUXOPS_PORT": str(free_port()), "FLUXOPS_STATE_DIR": isolated["FLUXOPS_STATE_DIR"],
                    "HF_ENDPOINT": hub.endpoint, "PYTHONPATH": str(NVML_FAKE_DIR),
                    "FAKE_NVML_SCENARIO": scenario_path("clean_3090")})
        flow = Flow(fresh_venv, tmp_path, env)
        _set_up_and_check(flow, hub, models, comfyui / "models")
        _serve_and_generate(flow, Path(isolated["FLUXOPS_STATE_DIR"]), tmp_path / "images")
    finally:
        if "flow" in locals():
            subprocess.run([str(fresh_venv / "bin" / "fluxops"), "comfy", "stop"], env=flow.env, timeout=60,
                           capture_output=True)  # a failed step must not leave ComfyUI running
        hub.close()


def _set_up_and_check(flow: Flow, hub: FakeHub, models: list[FakeModel], models_dir: Path) -> None:
    """setup places every file bit-exact, verify agrees, doctor is content."""
    setup = flow.run("setup")
    assert setup.returncode == 0, setup.stderr
    for model in models:
        assert (models_dir / model.folder / model.filename).read_bytes() == model.data
    assert hub.served.bytes == sum(len(m.data) for m in models)

    verify = flow.run("verify", "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["data"]["counts"] == {"ok": 5}

    doctor = flow.run("doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout
    assert {c["id"]: c["status"] for c in json.loads(doctor.stdout)["data"]["checks"]}["gpu.driver"] == "ok"


def _serve_and_generate(flow: Flow, state_dir: Path, out: Path) -> None:
    """comfy start, an image, the health check and maintain against it, then comfy stop."""
    start = flow.run("comfy", "start")
    assert start.returncode == 0, start.stderr
    state = json.loads((state_dir / "comfy" / "server.json").read_text())
    server = psutil.Process(state["pid"])

    generate = flow.run("generate", "--prompt", "a red bicycle against a brick wall", "--seed", "7",
                        "--output", str(out), "--json")
    assert generate.returncode == 0, generate.stderr
    images = sorted(out.glob("*.png"))
    assert len(images) == 1 and "7" in images[0].name
    sidecar = json.loads(images[0].with_suffix(".json").read_text())
    assert sidecar["seed"] == 7 and "a red bicycle" in json.dumps(sidecar)

    check = flow.run("generate", "--check")
    assert check.returncode == 0, check.stderr

    maintain = flow.run("maintain")
    assert maintain.returncode == 0, maintain.stdout + maintain.stderr
    assert "all well" in maintain.stdout
    assert server.is_running()  # it found ComfyUI running, so it left it running

    stop = flow.run("comfy", "stop")
    assert stop.returncode == 0, stop.stderr
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
    status = flow.run("comfy", "status")
    assert status.returncode == 1


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    test_command = next(line for line in readme if "pytest" in line).split("&&")[-1].strip()
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert any(line.startswith(test_command) for line in ci_lines), (test_command, ci_lines)


def test_installed_fluxops_verifies_an_empty_models_dir_and_has_help(fresh_venv: Path, tmp_path: Path) -> None:
    exe = str(fresh_venv / "bin" / "fluxops")
    env = {**os.environ, "FLUXOPS_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": ""}
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([exe, "verify", "--models-dir", str(empty)], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.count("missing") >= 5 and "fluxops setup" in proc.stderr
    for args in ([], ["setup"], ["verify"], ["doctor"], ["comfy"], ["comfy", "start"], ["generate"],
                 ["maintain"], ["maintain", "schedule"], ["config"]):
        shown = subprocess.run([exe, *args, "--help"], capture_output=True, text=True, env=env, timeout=60)
        assert shown.returncode == 0 and "Usage" in shown.stdout, (args, shown.stderr)
