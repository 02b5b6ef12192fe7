"""The one torch-build chooser: drivers 535/550/570/580 against Pascal, Ampere, Ada, Hopper and Blackwell GPUs,
mixed boxes, no GPU, AMD, and the overrides."""

from __future__ import annotations

import pytest

from fluxops.machine.torchbuild import (
    DEFAULT_INDEX_BASE,
    GpuArch,
    MachineFacts,
    choose_torch,
    coverage,
)

# The driver branches and the CUDA each runs (nvidia-smi's "CUDA Version").
DRIVERS = {"535": ("535.230.02", (12, 2)), "550": ("550.163.01", (12, 4)), "570": ("570.172.08", (12, 8)),
           "580": ("580.82.07", (13, 0))}
GPUS = {"sm_61": ("NVIDIA GeForce GTX 1080", (6, 1)), "sm_86": ("NVIDIA GeForce RTX 3090", (8, 6)),
        "sm_89": ("NVIDIA GeForce RTX 4090", (8, 9)), "sm_90": ("NVIDIA H100 80GB HBM3", (9, 0)),
        "sm_120": ("NVIDIA GeForce RTX 5090", (12, 0))}


def machine(driver: str, *gpus: str, platform: str = "linux") -> MachineFacts:
    version, ceiling = DRIVERS[driver]
    archs = tuple(GpuArch(i, GPUS[g][0], GPUS[g][1]) for i, g in enumerate(gpus))
    return MachineFacts(gpus=archs, cuda_ceiling=ceiling, driver_version=version, platform=platform)


# (driver, gpu) -> (torch, variant), or None where no build can run (the driver is too old for the GPU).
EXPECTED = {
    ("535", "sm_61"): ("2.14.1", "cu126"), ("535", "sm_86"): ("2.14.1", "cu126"),
    ("535", "sm_89"): ("2.14.1", "cu126"), ("535", "sm_90"): ("2.14.1", "cu126"), ("535", "sm_120"): None,
    ("550", "sm_61"): ("2.14.1", "cu126"), ("550", "sm_86"): ("2.14.1", "cu126"),
    ("550", "sm_89"): ("2.14.1", "cu126"), ("550", "sm_90"): ("2.14.1", "cu126"), ("550", "sm_120"): None,
    ("570", "sm_61"): ("2.14.1", "cu126"), ("570", "sm_86"): ("2.14.1", "cu126"),
    ("570", "sm_89"): ("2.14.1", "cu126"), ("570", "sm_90"): ("2.14.1", "cu126"),
    ("570", "sm_120"): ("2.11.0", "cu128"),
    ("580", "sm_61"): ("2.14.1", "cu126"), ("580", "sm_86"): ("2.14.1", "cu130"),
    ("580", "sm_89"): ("2.14.1", "cu130"), ("580", "sm_90"): ("2.14.1", "cu130"),
    ("580", "sm_120"): ("2.14.1", "cu130"),
}


@pytest.mark.parametrize(("driver", "gpu"), sorted(EXPECTED))
def test_driver_and_gpu_matrix(driver: str, gpu: str) -> None:
    choice = choose_torch(machine(driver, gpu))
    expected = EXPECTED[(driver, gpu)]
    if expected is None:
        assert choice.variant is None and choice.index_url is None
        assert "CUDA 12.8" in (choice.problem or "") and "update the NVIDIA driver" in (choice.problem or "")
        return
    torch, tag = expected
    assert choice.variant is not None and choice.problem is None
    assert (choice.variant.release.torch, choice.tag) == (torch, tag)
    assert choice.index_url == f"{DEFAULT_INDEX_BASE}/{tag}"
    assert GPUS[gpu][0] in choice.reason
    # Never the cu132 build: its index has no torchaudio, which ComfyUI imports.
    assert any("cu132" in s and "torchaudio" in s for s in choice.skipped)
    compat = choice.variant.cuda > DRIVERS[driver][1]
    assert any("minor-version compatibility" in n for n in choice.notes) == compat


def test_the_three_packages_come_at_matching_versions_with_the_build_label() -> None:
    choice = choose_torch(machine("580", "sm_89"))
    assert choice.requirements() == ["torch==2.14.1+cu130", "torchvision==0.29.1+cu130", "torchaudio==2.11.0+cu130"]
    assert choice.pins() == ["torch==2.14.1", "torchvision==0.29.1", "torchaudio==2.11.0"]
    command = choice.pip_command("/srv/ComfyUI/venv/bin/python")
    assert command == ("/srv/ComfyUI/venv/bin/python -m pip install --force-reinstall torch==2.14.1+cu130 "
                       "torchvision==0.29.1+cu130 torchaudio==2.11.0+cu130 "
                       "--index-url https://download.pytorch.org/whl/cu130")
    blackwell_on_570 = choose_torch(machine("570", "sm_120"))
    assert blackwell_on_570.requirements()[1] == "torchvision==0.26.0+cu128"


def test_mixed_boxes() -> None:
    assert choose_torch(machine("580", "sm_86", "sm_120")).tag == "cu130"
    assert choose_torch(machine("570", "sm_89", "sm_120")).tag == "cu128"
    assert choose_torch(machine("580", "sm_61", "sm_90")).tag == "cu126"  # Pascal keeps the box on CUDA 12.6
    split = choose_torch(machine("580", "sm_61", "sm_120"))  # no build has kernels for both
    assert split.variant is None
    assert "every GPU" in (split.problem or "")
    assert "GPU 0 NVIDIA GeForce GTX 1080 (sm_61)" in (split.problem or "")
    assert "GPU 1 NVIDIA GeForce RTX 5090 (sm_120)" in (split.problem or "")


def test_no_gpu_gets_the_cpu_build_and_amd_gets_rocm() -> None:
    cpu = choose_torch(MachineFacts())
    assert cpu.tag == "cpu" and cpu.index_url == f"{DEFAULT_INDEX_BASE}/cpu"
    assert cpu.requirements()[0] == "torch==2.14.1+cpu"
    assert choose_torch(MachineFacts(platform="darwin")).requirements()[0] == "torch==2.14.1"  # macOS: no label
    rocm = choose_torch(MachineFacts(amd_rocm=True))
    assert rocm.tag == "rocm7.14" and rocm.index_url == f"{DEFAULT_INDEX_BASE}/rocm7.14"
    assert choose_torch(MachineFacts(amd_rocm=True, platform="win32")).tag == "cpu"  # no ROCm wheels on Windows


def test_a_broken_nvidia_driver_is_not_taken_for_a_cpu_box() -> None:
    choice = choose_torch(MachineFacts(nvidia_problem="the NVIDIA driver is installed but not loaded"))
    assert choice.variant is None and "--cpu" in (choice.problem or "")


def test_overrides() -> None:
    gpu_box = machine("580", "sm_89")
    cpu = choose_torch(gpu_box, force_cpu=True)
    assert (cpu.tag, cpu.source) == ("cpu", "--cpu")
    mirror = choose_torch(gpu_box, index_override="https://mirror.example/pytorch/whl/cu126/")
    assert (mirror.tag, mirror.source, mirror.index_url) == ("cu126", "--torch-index",
                                                             "https://mirror.example/pytorch/whl/cu126/")
    assert mirror.requirements()[0] == "torch==2.14.1+cu126"
    own = choose_torch(gpu_box, index_override="http://10.0.0.5/simple")
    assert own.requirements() == ["torch==2.14.1", "torchvision==0.29.1", "torchaudio==2.11.0"]
    assert own.index_url == "http://10.0.0.5/simple"
    local = choose_torch(gpu_box, index_base="http://127.0.0.1:9/whl")
    assert local.index_url == "http://127.0.0.1:9/whl/cu130"


def test_kernel_coverage_follows_cuda_binary_compatibility() -> None:
    assert coverage(["sm_80", "sm_86"], (8, 9)) == "kernels"  # a cubin runs on a later minor of its major
    assert coverage(["sm_86"], (8, 0)) is None  # never on an earlier one
    assert coverage(["sm_90", "sm_100"], (12, 0)) is None  # nor on another major
    assert coverage(["sm_90", "compute_90"], (12, 0)) == "ptx"  # PTX is compiled for any later GPU
    assert coverage(["sm_90", "compute_90"], (12, 0), jit=False) is None


def test_amd_gpu_detection_reads_the_kfd_topology(tmp_path) -> None:
    from fluxops.machine.amdgpu import TOPOLOGY, amd_rocm_present

    assert amd_rocm_present(tmp_path) is False
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "kfd").write_text("")
    cpu_node = tmp_path / TOPOLOGY / "0"
    cpu_node.mkdir(parents=True)
    (cpu_node / "properties").write_text("cpu_cores_count 16\nsimd_count 0\ngfx_target_version 0\n")
    assert amd_rocm_present(tmp_path) is False  # the CPU's own node
    gpu_node = tmp_path / TOPOLOGY / "1"
    gpu_node.mkdir()
    (gpu_node / "properties").write_text("cpu_cores_count 0\nsimd_count 192\ngfx_target_version 110000\n")
    assert amd_rocm_present(tmp_path) is True  # an RX 7900 (gfx1100)
