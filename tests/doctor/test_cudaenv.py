"""Which GPU ComfyUI computes on, and CUDA settings that break torch."""

from __future__ import annotations

import pytest

from fluxops.machine.cudaenv import env_findings, select_device
from fluxops.machine.gpu import GpuDevice


def _gpu(index: int, name: str = "NVIDIA RTX A6000") -> GpuDevice:
    return GpuDevice(
        index=index,
        name=name,
        uuid=f"GPU-{index}aaaaaaa-0000-0000-0000-00000000000{index}",
        serial=None,
        pci_bus_id=None,
        memory_total=48,
        memory_used=0,
        memory_free=48,
    )


TWO = (_gpu(0), _gpu(1))


def test_default_is_the_first_gpu():
    sel = select_device(TWO, {}, None)
    assert sel.chosen is TWO[0] and sel.source == "default" and sel.problem is None


def test_cuda_visible_devices_picks_the_second():
    sel = select_device(TWO, {"CUDA_VISIBLE_DEVICES": "1"}, None)
    assert sel.chosen is TWO[1] and sel.visible == (TWO[1],) and sel.source == "CUDA_VISIBLE_DEVICES"


def test_uuid_prefix_and_order():
    sel = select_device(TWO, {"CUDA_VISIBLE_DEVICES": "GPU-1aaa,0"}, None)
    assert sel.visible == (TWO[1], TWO[0])


def test_missing_index_stops_the_list():
    sel = select_device(TWO, {"CUDA_VISIBLE_DEVICES": "0,5,1"}, None)
    assert sel.visible == (TWO[0],)
    assert sel.problem and "'5' names no GPU" in sel.problem


def test_empty_value_hides_every_gpu():
    sel = select_device(TWO, {"CUDA_VISIBLE_DEVICES": ""}, None)
    assert sel.chosen is None and sel.problem and "hides every GPU" in sel.problem


def test_cuda_device_flag_overrides_the_variable():
    sel = select_device(TWO, {"CUDA_VISIBLE_DEVICES": "0"}, 1)
    assert sel.chosen is TWO[1] and sel.source == "--cuda-device"


def test_mixed_models_warn_about_device_order():
    mixed = (_gpu(0, "NVIDIA RTX A4000"), _gpu(1))
    assert select_device(mixed, {}, None).notes
    assert not select_device(mixed, {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, None).notes


@pytest.mark.parametrize(
    "value",
    ["expandable_segments:True", "max_split_size_mb:512,garbage_collection_threshold:0.6", "backend:native"],
)
def test_valid_alloc_conf(value):
    assert env_findings({"PYTORCH_CUDA_ALLOC_CONF": value}) == []


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("max_split_size_mb=512", "not key:value"),
        ("expandable_segment:True", "unknown option"),
        ("expandable_segments:yes", "not a valid value"),
    ],
)
def test_malformed_alloc_conf_fails(value, words):
    (finding,) = env_findings({"PYTORCH_CUDA_ALLOC_CONF": value})
    assert finding.level == "fail" and words in finding.message and finding.fix


def test_equals_sign_fix_says_how_to_write_it():
    (finding,) = env_findings({"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb=512"})
    assert "max_split_size_mb:512" in finding.fix


def test_slow_debug_settings_warn():
    found = env_findings({"CUDA_LAUNCH_BLOCKING": "1", "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"})
    assert [f.level for f in found] == ["warn", "warn"]
