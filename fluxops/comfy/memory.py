"""The memory flags `fluxops comfy start` adds to ComfyUI's command line: what the VRAM budget of the
manifest's files calls for on the GPU ComfyUI will use (`machine.vram.workflow_budget`, the same budget doctor's
`gpu.vram_budget` check shows). Probes NVML and reads the model headers; it asks no server anything."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence

from fluxops.comfy.state import running_record
from fluxops.errors import FluxopsError
from fluxops.settings import Settings


def _cuda_device(extra_args: Sequence[str]) -> int | None:
    """ComfyUI's --cuda-device N among the arguments passed through to it."""
    args = list(extra_args)
    if "--cuda-device" in args[:-1]:
        with contextlib.suppress(ValueError):
            return int(args[args.index("--cuda-device") + 1])
    return None


def budget_memory_flags(
    settings: Settings, extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
    width: int = 1024, height: int = 1024,
) -> list[str]:
    """Launch flags from the VRAM budget on the GPU ComfyUI will use, seen through the environment it
    inherits ([] when the workflow fits, there is no GPU, or the manifest cannot be read)."""
    from fluxops.machine.cudaenv import select_device
    from fluxops.machine.gpu import probe_gpus
    from fluxops.machine.vram import launch_memory_flags, workflow_budget
    from fluxops.models.locate import found_paths
    from fluxops.models.manifest import load_manifest

    device = select_device(probe_gpus().devices, os.environ if env is None else env, _cuda_device(extra_args))
    if device.chosen is None:
        return []
    try:
        manifest = load_manifest(settings.manifest)
    except FluxopsError:
        return []
    record = running_record(settings)
    budget = workflow_budget(
        manifest,
        found_paths(manifest, settings.models_dir, settings.comfyui_dir),
        device.chosen,
        record.pid if record is not None else None,
        width,
        height,
    )
    return launch_memory_flags(budget)
