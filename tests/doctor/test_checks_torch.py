"""doctor's torch architecture check and its fix texts, which come from the one torch-build chooser."""

from __future__ import annotations

import os

import pytest

from fluxops.doctor import Status
from tests.fakes.comfy_python import make_fake_python
from tests.helpers import run_checks as run

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the fake interpreter is a POSIX shell script")


def test_a_gpu_without_kernels_in_the_installed_torch_fails_with_the_chosen_build(fake_nvml, make_settings,
                                                                                  tmp_path):
    fake_nvml("driver580_rtx5090")  # Blackwell (sm_120); the installed torch stops at sm_90
    exe = make_fake_python(tmp_path / "py", "cuda124")
    got = run(make_settings(comfyui_python=exe), "torch")
    arch = got["torch.arch"]
    assert arch.status is Status.FAIL
    assert "no kernels for GPU 0 NVIDIA GeForce RTX 5090 (sm_120)" in arch.summary
    assert arch.fix == (f"{exe} -m pip install --force-reinstall torch==2.14.1+cu130 torchvision==0.29.1+cu130 "
                        "torchaudio==2.11.0+cu130 --index-url https://download.pytorch.org/whl/cu130")
    assert arch.facts["arch_list"][-1] == "sm_90"
    assert arch.facts["gpus"] == [{"index": 0, "name": "NVIDIA GeForce RTX 5090", "compute_capability": (12, 0),
                                   "coverage": None}]


def test_kernels_for_the_gpu_pass_and_a_cpu_build_is_not_checked(fake_nvml, make_settings, tmp_path):
    fake_nvml("rtx3090_browser")
    ok = run(make_settings(comfyui_python=make_fake_python(tmp_path / "a", "cuda124")), "torch.arch")["torch.arch"]
    assert ok.status is Status.OK and "sm_86" in " ".join(ok.details)
    cpu = run(make_settings(comfyui_python=make_fake_python(tmp_path / "b", "cpu")), "torch.arch")["torch.arch"]
    assert cpu.status is Status.SKIP


def test_the_fix_on_a_box_no_build_fits_says_why(fake_nvml, make_settings, tmp_path):
    fake_nvml("driver580_gtx1080_rtx5090")
    exe = make_fake_python(tmp_path / "py", "cpu")
    torch = run(make_settings(comfyui_python=exe), "torch.cuda")["torch.cuda"]
    assert torch.status is Status.FAIL and "CPU-only" in torch.summary
    assert "every GPU" in torch.fix and "GTX 1080 (sm_61)" in torch.fix and "pip install" not in torch.fix
