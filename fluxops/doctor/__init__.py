"""`fluxops doctor`: checks with stable ids -> CheckResult -> DoctorReport. Nothing here prints.

Checks run in the order below, grouped for display. Naming ids (or a group prefix such as `gpu`) runs a
subset; the probes behind them run only when a chosen check needs them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from fluxops.doctor import checks_comfy, checks_gpu, checks_hub, checks_models, checks_system, checks_torch
from fluxops.doctor.context import DoctorContext, DoctorOptions
from fluxops.doctor.result import CheckResult, DoctorReport, Status, isolated
from fluxops.errors import FluxopsError
from fluxops.settings import Settings


@dataclass(frozen=True)
class Check:
    id: str
    group: str
    title: str
    run: Callable[[DoctorContext], CheckResult]


CHECKS: tuple[Check, ...] = (
    Check("python", "System", "Python interpreter", checks_system.check_python),
    Check("system.ram", "System", "RAM for loading the models", checks_system.check_ram),
    Check("system.disk", "System", "Disk space for models and images", checks_system.check_disk),
    Check("gpu.driver", "NVIDIA GPU and CUDA", "NVIDIA driver (NVML)", checks_gpu.check_driver),
    Check("gpu.devices", "NVIDIA GPU and CUDA", "GPUs and the one ComfyUI uses", checks_gpu.check_devices),
    Check("gpu.processes", "NVIDIA GPU and CUDA", "Other programs holding VRAM", checks_gpu.check_processes),
    Check("gpu.vram_budget", "NVIDIA GPU and CUDA", "VRAM the workflow needs", checks_gpu.check_vram_budget),
    Check("cuda.env", "NVIDIA GPU and CUDA", "CUDA environment variables", checks_gpu.check_cuda_env),
    Check("torch.cuda", "NVIDIA GPU and CUDA", "ComfyUI's torch and CUDA", checks_torch.check_torch),
    Check("torch.arch", "NVIDIA GPU and CUDA", "torch's kernels for each GPU", checks_torch.check_torch_arch),
    Check("models", "Models", "The five model files", checks_models.check_models),
    Check("comfyui.install", "ComfyUI", "ComfyUI install", checks_comfy.check_install),
    Check("comfyui.port", "ComfyUI", "ComfyUI's port", checks_comfy.check_port),
    Check("comfyui.nodes", "ComfyUI", "Node classes of the running server", checks_comfy.check_nodes),
    Check("token", "Hugging Face", "Hugging Face token", checks_hub.check_token),
)
CHECK_IDS = tuple(c.id for c in CHECKS)


def select_checks(names: Iterable[str]) -> tuple[Check, ...]:
    """The checks named (exact ids or a group prefix like `gpu`), in the standard order; all when none."""
    names = [n.strip() for n in names if n.strip()]
    if not names:
        return CHECKS
    chosen: set[str] = set()
    for name in names:
        matched = {c.id for c in CHECKS if c.id == name or c.id.startswith(name + ".")}
        if not matched:
            raise FluxopsError("doctor.unknown_check", f"no check named {name!r}; checks: {', '.join(CHECK_IDS)}")
        chosen |= matched
    return tuple(c for c in CHECKS if c.id in chosen)


def _run_one(check: Check, ctx: DoctorContext) -> CheckResult:
    return replace(isolated(check.id, lambda: check.run(ctx)), group=check.group)


def run_doctor(
    settings: Settings,
    options: DoctorOptions,
    env: Mapping[str, str],
    names: Iterable[str] = (),
    strict: bool = False,
    on_result: Callable[[CheckResult], None] | None = None,
) -> DoctorReport:
    started = time.perf_counter()
    checks = select_checks(names)
    ctx = DoctorContext(settings, options, env)
    results = []
    for check in checks:
        result = _run_one(check, ctx)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return DoctorReport(tuple(results), strict=strict, seconds=time.perf_counter() - started)


__all__ = [
    "CHECKS",
    "CHECK_IDS",
    "CheckResult",
    "DoctorOptions",
    "DoctorReport",
    "Status",
    "run_doctor",
    "select_checks",
]
