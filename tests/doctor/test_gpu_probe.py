"""fluxops.machine.gpu through the NVML seam (a fake pynvml with the real module's shapes and errors)."""

from __future__ import annotations

from fluxops.machine.gpu import probe_gpus

GIB = 1024**3
MIB = 1024**2


def test_rtx3090_with_a_browser_holding_vram(fake_nvml):
    fake_nvml("rtx3090_browser")
    probe = probe_gpus()
    assert probe.loaded and probe.error is None
    assert probe.driver_version == "550.54.14"
    assert probe.cuda_driver_version == (12, 4) and probe.cuda_text == "12.4"
    (gpu,) = probe.devices
    assert gpu.name == "NVIDIA GeForce RTX 3090"
    assert gpu.memory_total == 24 * GIB
    assert gpu.memory_free == 24 * GIB - gpu.memory_used
    assert gpu.power_w == 38.0 and gpu.power_limit_w == 350.0
    assert gpu.throttle_reasons == ("gpu_idle",) and gpu.problem_reasons == ()
    # a consumer card refuses these readings: None, not an error
    assert gpu.serial is None and gpu.ecc_uncorrected_volatile is None and gpu.retired_pages is None
    procs = {p.pid: p for p in gpu.processes}
    assert procs[4242].name == "firefox" and procs[4242].used_bytes == 1536 * MIB
    assert procs[4242].kind == "graphics"
    assert procs[1710].name == "Xorg"


def test_datacenter_cards_report_health_fields(fake_nvml):
    fake_nvml("two_gpus")
    probe = probe_gpus()
    first, second = probe.devices
    assert (first.index, second.index) == (0, 1)
    assert first.serial == "1322021012345" and first.pci_bus_id == "00000000:41:00.0"
    assert first.ecc_uncorrected_volatile == 0 and first.retired_pages == 0 and first.retired_pages_pending is False
    assert first.problem_reasons == ("sw_power_cap",)
    assert first.processes[0].kind == "compute" and first.processes[0].name == "python3"


def test_no_driver_is_a_finding_not_an_exception(fake_nvml):
    fake_nvml("no_driver")
    probe = probe_gpus()
    assert not probe.loaded and probe.devices == ()
    assert probe.error_kind == "library_not_found"
    assert probe.error == "NVML Shared Library Not Found"


def test_driver_not_loaded(fake_nvml):
    fake_nvml("driver_not_loaded")
    probe = probe_gpus()
    assert probe.error_kind == "driver_not_loaded" and probe.error == "Driver Not Loaded"


def test_old_driver_cuda_version(fake_nvml):
    fake_nvml("old_driver")
    assert probe_gpus().cuda_driver_version == (11, 8)


def test_fake_rejects_calls_before_init(fake_nvml):
    """The fake is strict like the real library, so probe_gpus must init before asking."""
    import sys

    import pytest

    nvml = sys.modules["pynvml"]
    fake_nvml("rtx3090_browser")
    with pytest.raises(nvml.NVMLError_Uninitialized):
        nvml.nvmlDeviceGetCount()
    assert isinstance(nvml.NVMLError(nvml.NVML_ERROR_LIBRARY_NOT_FOUND), nvml.NVMLError_LibraryNotFound)
