"""The VRAM budget: from safetensors headers (or manifest sizes) against free VRAM."""

from __future__ import annotations

from pathlib import Path

from fluxops.machine.vram import (
    GIB,
    MIB,
    OVERHEAD_BYTES,
    Weight,
    compute_budget,
    launch_memory_flags,
    model_weights,
    working_bytes,
)
from fluxops.models.manifest import load_manifest
from tests.doctor.modelkit import REAL, make_models, tensor_bytes

# The production files' tensor bytes (sizes from the Hub's LFS pointers, minus headers).
PRODUCTION = (
    Weight("diffusion_model", 11_901_000_000, "header"),
    Weight("clip_l", 246_000_000, "header"),
    Weight("t5xxl", 9_786_000_000, "header"),
    Weight("vae", 335_200_000, "header"),
    Weight("lora", 694_000_000, "header"),
)


def test_working_memory_follows_comfyuis_estimate():
    # 2 (cfg batch) x 128 x 128 latent x 2 bytes x 0.01 x 3.1 MiB
    assert working_bytes(1024, 1024) == int(2 * 128 * 128 * 2 * 0.01 * 3.1 * MIB)
    assert abs(working_bytes(2048, 2048) - 4 * working_bytes(1024, 1024)) < 8


def test_rtx3090_fits_with_swapping_between_stages():
    budget = compute_budget(PRODUCTION, free_bytes=22 * GIB, total_bytes=24 * GIB)
    assert budget.verdict == "fits" and not budget.all_resident
    assert launch_memory_flags(budget) == []
    assert budget.peak_bytes == budget.stage_bytes["sample"] + OVERHEAD_BYTES


def test_80gb_card_keeps_everything_loaded():
    budget = compute_budget(PRODUCTION, free_bytes=79 * GIB, total_bytes=80 * GIB)
    assert budget.verdict == "fits" and budget.all_resident


def test_12gb_card_offloads_with_lowvram():
    budget = compute_budget(PRODUCTION, free_bytes=11 * GIB, total_bytes=12 * GIB)
    assert budget.verdict == "offload"
    assert launch_memory_flags(budget)[0] == "--lowvram"


def test_desktop_gpu_reserves_vram_when_offloading():
    budget = compute_budget(PRODUCTION, free_bytes=11 * GIB, total_bytes=12 * GIB, drives_display=True)
    assert launch_memory_flags(budget)[-2:] == ["--reserve-vram", "1"]


def test_text_encoders_alone_too_big_suggests_fp8_text_encoder():
    big_te = (Weight("diffusion_model", 5 * GIB, "header"), Weight("t5xxl", 12 * GIB, "header"))
    budget = compute_budget(big_te, free_bytes=11 * GIB, total_bytes=12 * GIB)
    assert budget.verdict == "offload" and launch_memory_flags(budget) == ["--fp8_e4m3fn-text-enc"]


def test_tiny_gpu_cannot_run():
    budget = compute_budget(PRODUCTION, free_bytes=3 * GIB, total_bytes=4 * GIB)
    assert budget.verdict == "cannot_run" and budget.minimum_bytes > 3 * GIB


def test_bigger_images_need_more():
    small = compute_budget(PRODUCTION, 22 * GIB, 24 * GIB, 1024, 1024)
    large = compute_budget(PRODUCTION, 22 * GIB, 24 * GIB, 2048, 2048)
    assert large.peak_bytes > small.peak_bytes


def test_weights_come_from_headers_and_manifest_for_absent_files(tmp_path: Path):
    manifest = load_manifest(make_models(tmp_path / "models", tmp_path / "m.toml", REAL, skip=("lora",)))
    found = {spec.id: spec.dest_path(tmp_path / "models") for spec in manifest.files if spec.id != "lora"}
    weights = {w.id: w for w in model_weights(manifest, found)}
    assert weights["diffusion_model"].source == "header"
    assert weights["diffusion_model"].bytes == tensor_bytes(REAL, "diffusion_model")  # header excluded
    assert weights["t5xxl"].bytes == tensor_bytes(REAL, "t5xxl")
    assert weights["lora"].source == "manifest" and weights["lora"].bytes == manifest.by_id("lora").size
