"""The GPU, CUDA and torch checks, run in-process through the fake NVML seam and fake ComfyUI interpreters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fluxops.doctor import Status
from tests.doctor.modelkit import REAL, make_models
from tests.fakes.comfy_python import make_fake_python
from tests.fakes.nvml_seam import scenario_path
from tests.helpers import run_checks, write_server_record

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the fake interpreter is a POSIX shell script")


@pytest.fixture
def real_models(tmp_path: Path) -> dict[str, Path]:
    """The five production files at their real sizes (sparse), and their manifest."""
    models = tmp_path / "models"
    return {"models_dir": models, "manifest": make_models(models, tmp_path / "real.toml", REAL)}


def test_rtx3090_with_browser(fake_nvml, make_settings, real_models, tmp_path):
    fake_nvml("rtx3090_browser")
    settings = make_settings(comfyui_python=make_fake_python(tmp_path / "py", "cuda124"), **real_models)
    got = run_checks(settings, "gpu", "torch.cuda", "cuda.env")
    assert got["gpu.driver"].status is Status.OK
    assert "550.54.14" in got["gpu.driver"].summary and "12.4" in got["gpu.driver"].summary
    devices = got["gpu.devices"]
    assert devices.status is Status.OK and devices.facts["comfyui_device"] == 0
    procs = got["gpu.processes"]
    assert procs.status is Status.WARN and procs.fix
    firefox = next(p for p in procs.facts["processes"] if p["pid"] == 4242)
    assert firefox == {
        "pid": 4242,
        "name": "firefox",
        "used_bytes": 1536 * 1024**2,
        "kind": "graphics",
        "desktop": False,
    }
    assert "kill 4242" in procs.fix  # the browser, not the desktop's Xorg
    assert procs.facts["held_bytes"] == 1536 * 1024**2
    assert any("firefox" in line and "1.5 GiB" in line for line in procs.details)
    budget = got["gpu.vram_budget"]
    assert budget.status is Status.OK and budget.facts["verdict"] == "fits"
    assert {w["source"] for w in budget.facts["weights"]} == {"header"}
    assert got["torch.cuda"].status is Status.OK
    assert got["cuda.env"].status is Status.OK


def test_budget_at_a_huge_size_offloads_and_names_the_flag(fake_nvml, make_settings, real_models):
    fake_nvml("rtx3090_browser")
    got = run_checks(make_settings(**real_models), "gpu.vram_budget", width=2560, height=2560)
    budget = got["gpu.vram_budget"]
    assert budget.status is Status.WARN and budget.facts["verdict"] == "offload"
    assert "--lowvram" in budget.fix and "--reserve-vram" in budget.fix  # the 3090 drives the desktop
    assert "closing the other programs" in budget.fix


def test_two_gpus_cuda_visible_devices_1(fake_nvml, make_settings, real_models, monkeypatch):
    fake_nvml("two_gpus")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    got = run_checks(make_settings(**real_models), "gpu", "cuda.env")
    devices = got["gpu.devices"]
    assert devices.facts["comfyui_device"] == 1 and devices.facts["chosen_by"] == "CUDA_VISIBLE_DEVICES"
    assert "GPU 1" in devices.summary
    assert got["gpu.processes"].status is Status.OK  # the training job is on GPU 0, not ours
    assert got["gpu.vram_budget"].facts["verdict"] == "fits"
    assert got["cuda.env"].status is Status.OK and got["cuda.env"].facts["variables"] == {"CUDA_VISIBLE_DEVICES": "1"}


def test_two_gpus_default_is_the_busy_one(fake_nvml, make_settings, real_models):
    fake_nvml("two_gpus")
    got = run_checks(make_settings(**real_models), "gpu")
    assert got["gpu.devices"].facts["comfyui_device"] == 0
    assert got["gpu.devices"].status is Status.WARN  # power-capped at 79 °C
    assert got["gpu.processes"].status is Status.WARN
    assert got["gpu.vram_budget"].status is Status.FAIL  # 4 GiB free of 48


def test_cuda_device_option_picks_the_gpu(fake_nvml, make_settings, real_models):
    fake_nvml("two_gpus")
    got = run_checks(make_settings(**real_models), "gpu.devices", cuda_device=1)
    assert got["gpu.devices"].facts["comfyui_device"] == 1 and got["gpu.devices"].facts["chosen_by"] == "--cuda-device"


def test_cuda_visible_devices_naming_a_missing_gpu(fake_nvml, make_settings, monkeypatch):
    fake_nvml("two_gpus")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    got = run_checks(make_settings(), "cuda.env", "gpu.devices")
    assert got["cuda.env"].status is Status.FAIL and "'2' names no GPU" in got["cuda.env"].summary
    assert got["gpu.devices"].status is Status.FAIL


def test_malformed_alloc_conf(fake_nvml, make_settings, monkeypatch):
    fake_nvml("rtx3090_browser")
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb=512")
    got = run_checks(make_settings(), "cuda.env")
    assert got["cuda.env"].status is Status.FAIL and "max_split_size_mb:512" in got["cuda.env"].fix


def test_no_driver(fake_nvml, make_settings, tmp_path):
    fake_nvml("no_driver")
    settings = make_settings(comfyui_python=make_fake_python(tmp_path / "py", "cpu"))
    got = run_checks(settings, "gpu", "torch.cuda")
    driver = got["gpu.driver"]
    assert driver.status is Status.FAIL and "no NVIDIA driver" in driver.summary
    assert "nvidia-smi" in driver.fix
    assert {got[i].status for i in ("gpu.devices", "gpu.processes", "gpu.vram_budget")} == {Status.SKIP}
    assert got["torch.cuda"].status is Status.WARN  # CPU torch on a machine without a GPU: nothing to fix there


def test_driver_not_loaded(fake_nvml, make_settings):
    fake_nvml("driver_not_loaded")
    driver = run_checks(make_settings(), "gpu.driver")["gpu.driver"]
    assert driver.status is Status.FAIL and "not loaded" in driver.summary and "reboot" in driver.fix


def test_driver_older_than_torchs_cuda(fake_nvml, make_settings, tmp_path):
    fake_nvml("old_driver")
    settings = make_settings(comfyui_python=make_fake_python(tmp_path / "py", "cuda124"))
    torch = run_checks(settings, "torch.cuda")["torch.cuda"]
    assert torch.status is Status.FAIL
    assert "built for CUDA 12.4" in torch.summary and "up to 11.8" in torch.summary
    # No torch build of the table runs on a CUDA 11.8 driver: the fix says so, build by build.
    assert torch.fix.startswith("update the NVIDIA driver") and "needs a driver for CUDA 12.6" in torch.fix


def test_too_new_cuda_that_torch_cannot_use(fake_nvml, make_settings, tmp_path):
    fake_nvml("rtx3090_browser")  # driver CUDA 12.4; torch built for 12.8 and is_available() False
    settings = make_settings(comfyui_python=make_fake_python(tmp_path / "py", "too_new"))
    torch = run_checks(settings, "torch.cuda")["torch.cuda"]
    assert torch.status is Status.FAIL and "12.8" in torch.summary and "whl/cu126" in torch.fix
    assert any("too old" in line for line in torch.details)


def test_cpu_only_torch_on_a_gpu_machine(fake_nvml, make_settings, tmp_path):
    fake_nvml("rtx3090_browser")
    exe = make_fake_python(tmp_path / "py", "cpu")
    torch = run_checks(make_settings(comfyui_python=exe), "torch.cuda")["torch.cuda"]
    assert torch.status is Status.FAIL and "CPU-only" in torch.summary
    # The chooser's build for a CUDA 12.4 driver, the three packages together from its index.
    assert torch.fix == (f"{exe} -m pip install --force-reinstall torch==2.14.1+cu126 torchvision==0.29.1+cu126 "
                         "torchaudio==2.11.0+cu126 --index-url https://download.pytorch.org/whl/cu126")


def test_torch_crash(fake_nvml, make_settings, tmp_path):
    fake_nvml("rtx3090_browser")
    settings = make_settings(comfyui_python=make_fake_python(tmp_path / "py", "crash"))
    torch = run_checks(settings, "torch.cuda")["torch.cuda"]
    assert torch.status is Status.FAIL and "libcudnn.so.9" in torch.summary


def test_torch_hang(fake_nvml, make_settings, tmp_path):
    fake_nvml("rtx3090_browser")
    settings = make_settings(comfyui_python=make_fake_python(tmp_path / "py", "hang"))
    torch = run_checks(settings, "torch.cuda", torch_timeout=1.0)["torch.cuda"]
    assert torch.status is Status.WARN and "--torch-timeout" in torch.fix


def test_comfyui_venv_is_found_beside_the_install(fake_nvml, make_settings, tmp_path):
    fake_nvml("rtx3090_browser")
    comfy = tmp_path / "ComfyUI"
    exe = make_fake_python(comfy / "venv", "cuda124")
    assert exe == comfy / "venv" / "bin" / "python"
    torch = run_checks(make_settings(comfyui_dir=comfy), "torch.cuda")["torch.cuda"]
    assert torch.status is Status.OK and torch.facts["python_source"] == "venv"


def test_memory_flags_for_comfy_start(fake_nvml, make_settings, real_models):
    from fluxops.comfy.memory import budget_memory_flags

    fake_nvml("rtx3090_browser")
    settings = make_settings(**real_models)
    assert budget_memory_flags(settings, env={}) == []
    assert budget_memory_flags(settings, env={}, width=2560, height=2560) == ["--lowvram", "--reserve-vram", "1"]


def test_the_comfyui_fluxops_started_is_not_another_program(
    fake_nvml, make_settings, real_models, tmp_path, monkeypatch
):
    import json

    fake_nvml("two_gpus")
    scenario = json.loads(Path(scenario_path("two_gpus")).read_text(encoding="utf-8"))
    scenario["devices"][0]["compute_processes"][0]["pid"] = os.getpid()  # "ComfyUI" holds 43.5 GiB on GPU 0
    path = tmp_path / "ours.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    monkeypatch.setenv("FAKE_NVML_SCENARIO", str(path))
    settings = make_settings(**real_models)
    write_server_record(settings, os.getpid(), settings.port)
    got = run_checks(settings, "gpu.processes", "gpu.vram_budget")
    assert got["gpu.processes"].status is Status.OK
    assert got["gpu.processes"].facts["fluxops_comfyui_pid"] == os.getpid()
    assert got["gpu.vram_budget"].facts["verdict"] == "fits"  # its VRAM is the workload's, not a competitor's
