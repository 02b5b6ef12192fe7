"""The VRAM budget of the production workflow, from the model files themselves, against free VRAM.

Weights: the tensor bytes in each file's safetensors header (the manifest's size for a file not present yet);
no table of model sizes. ComfyUI loads the models stage by stage and swaps them when VRAM is short: the text
encoders (CLIP-L + T5-XXL) encode the prompt, then the diffusion model with the LoRA samples, then the VAE
decodes. So the workflow fits when its largest stage fits, and stays fully loaded between runs when all of it
fits at once.

Working memory while sampling follows ComfyUI's own estimate (`BaseModel.memory_required`): latent area x
batch x dtype bytes x 0.01 x the model's `memory_usage_factor` MiB, with Flux's factor 3.1, a latent of
16 x H/8 x W/8, bf16 activations and a batch of 2 (CFG > 1 runs the positive and negative prompt together).
The overhead covers the CUDA context and the VRAM ComfyUI keeps free for itself (minimum inference memory
plus its extra reserve).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fluxops.machine.gpu import GpuDevice
from fluxops.models.manifest import Manifest
from fluxops.models.tensorfile import NotSafetensors, read_summary
from fluxops.units import GIB, MIB

FLUX_MEMORY_USAGE_FACTOR = 3.1  # comfy/supported_models.py, class Flux
ACTIVATION_DTYPE_BYTES = 2  # bf16
CFG_BATCH = 2  # positive + negative conditioning, batched (cfg 2.0 in the production preset)
OVERHEAD_BYTES = int(1.5 * GIB)  # CUDA context (~0.3 GiB) + ComfyUI's minimum inference memory and reserve
MIN_RESIDENT_WEIGHTS = 1 * GIB  # below this even --lowvram streams weights too slowly to be usable

# Which manifest file ids make up each stage of the workflow.
STAGES: dict[str, tuple[str, ...]] = {
    "text_encode": ("clip_l", "t5xxl"),
    "sample": ("diffusion_model", "lora"),
    "decode": ("vae",),
}


@dataclass(frozen=True)
class Weight:
    id: str
    bytes: int
    source: str  # "header" (tensor bytes read from the file) or "manifest" (file not present: its size)
    path: str | None = None


@dataclass(frozen=True)
class Budget:
    weights: tuple[Weight, ...]
    width: int
    height: int
    working_bytes: int
    overhead_bytes: int
    stage_bytes: dict[str, int]  # weights (+ working memory for sampling) per stage
    peak_bytes: int  # largest stage + overhead: what must be free for a run without offloading
    resident_bytes: int  # everything at once + working + overhead: no reloading between runs
    minimum_bytes: int  # below this ComfyUI cannot run the workflow on this GPU at all
    free_bytes: int
    total_bytes: int
    verdict: str  # "fits", "offload", "cannot_run"
    all_resident: bool
    flags: tuple[str, ...]  # ComfyUI launch flags that help
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "all_resident": self.all_resident,
            "flags": list(self.flags),
            "free_bytes": self.free_bytes,
            "total_bytes": self.total_bytes,
            "peak_bytes": self.peak_bytes,
            "resident_bytes": self.resident_bytes,
            "minimum_bytes": self.minimum_bytes,
            "working_bytes": self.working_bytes,
            "overhead_bytes": self.overhead_bytes,
            "stage_bytes": dict(self.stage_bytes),
            "width": self.width,
            "height": self.height,
            "weights": [w.__dict__ for w in self.weights],
            "reasons": list(self.reasons),
        }


def working_bytes(width: int, height: int, batch: int = CFG_BATCH) -> int:
    """ComfyUI's estimate of the activations for sampling a Flux latent of this image size."""
    latent_area = batch * math.ceil(height / 8) * math.ceil(width / 8)
    return int(latent_area * ACTIVATION_DTYPE_BYTES * 0.01 * FLUX_MEMORY_USAGE_FACTOR * MIB)


def model_weights(manifest: Manifest, found: dict[str, Path]) -> tuple[Weight, ...]:
    """Tensor bytes per file: from the header of the file where found, else the manifest's size."""
    weights = []
    for spec in manifest.files:
        path = found.get(spec.id)
        if path is not None:
            try:
                summary = read_summary(path)
                weights.append(Weight(spec.id, summary.data_bytes, "header", str(path)))
                continue
            except (NotSafetensors, OSError):
                pass  # a broken file is the models check's finding; budget with the expected size
        weights.append(Weight(spec.id, spec.size, "manifest"))
    return tuple(weights)


def _stage_bytes(weights: Sequence[Weight], work: int) -> dict[str, int]:
    by_id = {w.id: w.bytes for w in weights}
    stages = {name: sum(by_id.get(i, 0) for i in ids) for name, ids in STAGES.items()}
    stages["sample"] += work
    known = {i for ids in STAGES.values() for i in ids}
    other = sum(b for i, b in by_id.items() if i not in known)  # files a custom manifest adds: count them
    if other:
        stages["sample"] += other
    return stages


def compute_budget(
    weights: Sequence[Weight],
    free_bytes: int,
    total_bytes: int,
    width: int = 1024,
    height: int = 1024,
    drives_display: bool = False,
) -> Budget:
    work = working_bytes(width, height)
    stages = _stage_bytes(weights, work)
    peak = max(stages.values()) + OVERHEAD_BYTES
    resident = sum(w.bytes for w in weights) + work + OVERHEAD_BYTES
    minimum = work + OVERHEAD_BYTES + MIN_RESIDENT_WEIGHTS
    reasons: list[str] = []
    flags: list[str] = []
    if free_bytes >= peak:
        verdict = "fits"
    elif free_bytes >= minimum:
        verdict = "offload"
        if stages["sample"] + OVERHEAD_BYTES > free_bytes:
            flags.append("--lowvram")
            reasons.append(
                "the diffusion model and its working memory do not fit: ComfyUI keeps part of the "
                "weights in RAM and streams them (slower); --lowvram makes it do so from the start"
            )
        if stages["text_encode"] + OVERHEAD_BYTES > free_bytes:
            flags.append("--fp8_e4m3fn-text-enc")
            reasons.append("the text encoders do not fit in 16-bit: --fp8_e4m3fn-text-enc halves T5-XXL")
        if drives_display:
            flags.extend(["--reserve-vram", "1"])
            reasons.append("this GPU also drives the desktop: --reserve-vram 1 keeps 1 GB for it")
    else:
        verdict = "cannot_run"
        reasons.append(
            f"even with offloading, sampling at {width}x{height} needs its working memory plus "
            "about 1 GiB of weights in VRAM"
        )
    return Budget(
        weights=tuple(weights),
        width=width,
        height=height,
        working_bytes=work,
        overhead_bytes=OVERHEAD_BYTES,
        stage_bytes=stages,
        peak_bytes=peak,
        resident_bytes=resident,
        minimum_bytes=minimum,
        free_bytes=free_bytes,
        total_bytes=total_bytes,
        verdict=verdict,
        all_resident=free_bytes >= resident,
        flags=tuple(flags),
        reasons=tuple(reasons),
    )


def workflow_budget(
    manifest: Manifest,
    found: dict[str, Path],
    device: GpuDevice,
    workload_pid: int | None = None,
    width: int = 1024,
    height: int = 1024,
) -> Budget:
    """The budget of the manifest's files on `device`: what doctor's gpu.vram_budget shows and what
    `fluxops comfy start` takes its memory flags from. VRAM held by `workload_pid` (the ComfyUI fluxops
    started) counts as free: it is the workload itself."""
    ours = sum(p.used_bytes or 0 for p in device.processes if workload_pid is not None and p.pid == workload_pid)
    return compute_budget(
        model_weights(manifest, found),
        device.memory_free + ours,
        device.memory_total,
        width,
        height,
        drives_display=drives_a_display(device),
    )


def drives_a_display(device: GpuDevice) -> bool:
    """The GPU shows a desktop: it keeps some VRAM for it, and graphics programs use it."""
    return bool(device.display_active) or any(p.kind == "graphics" for p in device.processes)


def launch_memory_flags(budget: Budget) -> list[str]:
    """The ComfyUI command-line flags this budget calls for (empty when the workflow fits)."""
    return list(budget.flags)
