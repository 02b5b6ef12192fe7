"""Checks of the NVIDIA driver, the GPUs, the VRAM budget and CUDA settings (ComfyUI's torch: checks_torch)."""

from __future__ import annotations

from fluxops.doctor.context import DoctorContext
from fluxops.doctor.result import CheckResult, fail, ok, skip, warn
from fluxops.machine.cudaenv import ALLOC_CONF_VARS, env_findings
from fluxops.machine.gpu import GpuDevice, GpuProcess
from fluxops.machine.vram import Budget, compute_budget, drives_a_display
from fluxops.units import gib

# The desktop's own GPU clients: they hold a little VRAM on a GPU that drives a display and cannot be closed.
DESKTOP_PROCESSES = frozenset(
    {
        "Xorg",
        "Xwayland",
        "gnome-shell",
        "kwin_x11",
        "kwin_wayland",
        "plasmashell",
        "sway",
        "Hyprland",
        "mutter",
        "dwm.exe",
        "explorer.exe",
        "csrss.exe",
    }
)
NO_DRIVER_FIX = (
    "install the NVIDIA driver (Ubuntu: `sudo ubuntu-drivers install`, then reboot) and check it "
    "with `nvidia-smi`; in a container, start it with `--gpus all`"
)
_DRIVER_FAILURES = {
    "not_installed": ("the NVML binding (nvidia-ml-py) is not installed", "pip install nvidia-ml-py"),
    "library_not_found": (
        "no NVIDIA driver: the NVML library (libnvidia-ml) is not on this machine",
        NO_DRIVER_FIX,
    ),
    "driver_not_loaded": (
        "the NVIDIA driver is installed but not loaded",
        "reboot; if that does not help, reinstall the driver for the running kernel "
        "(after a kernel update: `sudo dkms autoinstall`), then check with `nvidia-smi`",
    ),
    "no_permission": (
        "not allowed to talk to the NVIDIA driver",
        "add your user to the group that owns /dev/nvidia* (often `video`), then log in again",
    ),
    "version_mismatch": (
        "the NVIDIA driver and its library differ in version (updated without a reboot)",
        "reboot",
    ),
}


def check_driver(ctx: DoctorContext) -> CheckResult:
    gpu = ctx.gpu
    if not gpu.loaded:
        summary, fix = _DRIVER_FAILURES.get(gpu.error_kind or "", (f"NVML failed: {gpu.error}", NO_DRIVER_FIX))
        return fail(
            "gpu.driver",
            summary,
            fix,
            [f"NVML said: {gpu.error}"],
            error_kind=gpu.error_kind,
            error=gpu.error,
        )
    if not gpu.devices:
        return fail(
            "gpu.driver",
            f"NVIDIA driver {gpu.driver_version} is loaded but reports no GPU",
            "check `nvidia-smi`; in a container, pass the GPU in (`--gpus all`)",
            list(gpu.notes),
            driver_version=gpu.driver_version,
            cuda_driver_version=gpu.cuda_text,
        )
    return ok(
        "gpu.driver",
        f"NVIDIA driver {gpu.driver_version}, supports CUDA up to {gpu.cuda_text}",
        list(gpu.notes),
        driver_version=gpu.driver_version,
        cuda_driver_version=gpu.cuda_text,
    )


def _device_line(device: GpuDevice, chosen: bool) -> str:
    parts = [
        f"GPU {device.index}: {device.name}",
        f"{gib(device.memory_total)} total, {gib(device.memory_used)} used, {gib(device.memory_free)} free",
    ]
    if device.temperature_c is not None:
        parts.append(f"{device.temperature_c} °C")
    if device.power_w is not None:
        limit = f"/{device.power_limit_w:.0f}" if device.power_limit_w else ""
        parts.append(f"{device.power_w:.0f}{limit} W")
    if device.problem_reasons:
        parts.append("throttled: " + ", ".join(device.problem_reasons))
    return " · ".join(parts) + ("   <- ComfyUI computes here" if chosen else "")


def check_devices(ctx: DoctorContext) -> CheckResult:
    if not ctx.gpu.devices:
        return skip("gpu.devices", "no GPU to inspect (see gpu.driver)")
    sel = ctx.selection
    details = [_device_line(d, d is sel.chosen) for d in ctx.gpu.devices]
    details.append(
        f"chosen by: {sel.source}"
        + (f" (visible to CUDA: {', '.join(str(d.index) for d in sel.visible)})" if sel.source != "default" else "")
    )
    details.extend(sel.notes)
    facts = {
        "devices": [d.to_dict() for d in ctx.gpu.devices],
        "comfyui_device": sel.chosen.index if sel.chosen else None,
        "chosen_by": sel.source,
    }
    if sel.chosen is None:
        return fail(
            "gpu.devices",
            "ComfyUI will see no GPU",
            sel.problem or "unset CUDA_VISIBLE_DEVICES",
            details,
            **facts,
        )
    problems = list(sel.chosen.health_problems())
    summary = f"ComfyUI will use GPU {sel.chosen.index}: {sel.chosen.name} ({gib(sel.chosen.memory_free)} free)"
    if problems:
        return warn(
            "gpu.devices",
            summary + "; " + problems[0],
            "check cooling and power (`nvidia-smi -q -d PERFORMANCE,TEMPERATURE,ECC`)",
            details + problems[1:],
            **facts,
        )
    if sel.notes:
        return warn("gpu.devices", summary, "export CUDA_DEVICE_ORDER=PCI_BUS_ID", details, **facts)
    return ok("gpu.devices", summary, details, **facts)


def _process_line(p: GpuProcess, desktop: bool) -> str:
    used = gib(p.used_bytes) if p.used_bytes is not None else "?"
    return f"pid {p.pid:<7} {p.name or '?':<24} {used:>10} ({p.kind}{', desktop' if desktop else ''})"


def check_processes(ctx: DoctorContext) -> CheckResult:
    chosen = ctx.selection.chosen
    if chosen is None:
        return skip("gpu.processes", "no GPU for ComfyUI (see gpu.devices)")
    ours = ctx.comfy_pid
    others = sorted((p for p in chosen.processes if p.pid != ours), key=lambda p: -(p.used_bytes or 0))
    closable = [p for p in others if (p.name or "") not in DESKTOP_PROCESSES]
    listed = [
        {
            "pid": p.pid,
            "name": p.name,
            "used_bytes": p.used_bytes,
            "kind": p.kind,
            "desktop": p not in closable,
        }
        for p in others
    ]
    lines = [_process_line(p, p not in closable) for p in others]
    held = sum(p.used_bytes or 0 for p in closable)
    facts = {"processes": listed, "held_bytes": held, "fluxops_comfyui_pid": ours}
    if not closable:
        what = "only the desktop uses" if others else "no other program holds VRAM on"
        return ok("gpu.processes", f"{what} GPU {chosen.index}", lines, **facts)
    return warn(
        "gpu.processes",
        f"{len(closable)} other program(s) hold {gib(held)} of VRAM on GPU {chosen.index}",
        "close them before generating (browsers: turn off hardware acceleration), or stop the largest with "
        f"`kill {closable[0].pid}` ({closable[0].name or '?'})",
        lines,
        **facts,
    )


def check_vram_budget(ctx: DoctorContext) -> CheckResult:
    chosen = ctx.selection.chosen
    if chosen is None:
        return skip("gpu.vram_budget", "no GPU for ComfyUI (see gpu.devices)")
    budget = ctx.budget
    if budget is None:
        return skip("gpu.vram_budget", "no manifest to budget (see models)")
    weights = budget.weights
    stages = budget.stage_bytes
    details = [
        f"text encoders {gib(stages['text_encode'])} · diffusion model + LoRA + working memory "
        f"{gib(stages['sample'])} · VAE {gib(stages['decode'])} · overhead {gib(budget.overhead_bytes)}",
        f"largest stage needs {gib(budget.peak_bytes)}; all models at once {gib(budget.resident_bytes)}; "
        f"free {gib(budget.free_bytes)} of {gib(budget.total_bytes)}",
        "weights from " + ", ".join(f"{w.id} ({w.source})" for w in weights),
        *budget.reasons,
    ]
    facts = budget.to_dict()
    size = f"{budget.width}x{budget.height}"
    if budget.verdict == "fits":
        keep = "all models stay loaded" if budget.all_resident else "ComfyUI swaps models between stages"
        return ok("gpu.vram_budget", f"the workflow fits at {size} ({keep})", details, **facts)
    freed, others_bytes = _without_other_programs(ctx, chosen, budget)
    facts["verdict_without_other_programs"] = freed.verdict
    close = (
        (
            f"; closing the other programs (gpu.processes) frees {gib(others_bytes)} and then it "
            f"{'fits' if freed.verdict == 'fits' else 'still does not fit'}"
        )
        if others_bytes
        else ""
    )
    if budget.verdict == "offload":
        flags = " ".join(budget.flags)
        fix = (f"start ComfyUI with {flags}" if flags else "let ComfyUI offload") + close
        return warn(
            "gpu.vram_budget",
            f"ComfyUI will offload at {size}: the largest stage needs "
            f"{gib(budget.peak_bytes)}, {gib(budget.free_bytes)} is free",
            fix,
            details,
            **facts,
        )
    return fail(
        "gpu.vram_budget",
        f"cannot run at {size}: needs at least {gib(budget.minimum_bytes)} of VRAM, {gib(budget.free_bytes)} is free",
        f"use a smaller image size (--width/--height) or a GPU with more memory{close}",
        details,
        **facts,
    )


def _without_other_programs(ctx: DoctorContext, chosen: GpuDevice, budget: Budget) -> tuple[Budget, int]:
    """The budget once the other programs on the GPU (not the desktop's) are closed, and what that frees."""
    others_bytes = sum(
        p.used_bytes or 0
        for p in chosen.processes
        if p.pid != ctx.comfy_pid and (p.name or "") not in DESKTOP_PROCESSES
    )
    freed = compute_budget(
        budget.weights,
        budget.free_bytes + others_bytes,
        chosen.memory_total,
        budget.width,
        budget.height,
        drives_display=drives_a_display(chosen),
    )
    return freed, others_bytes


def check_cuda_env(ctx: DoctorContext) -> CheckResult:
    names = (
        "CUDA_VISIBLE_DEVICES",
        *ALLOC_CONF_VARS,
        "CUDA_DEVICE_ORDER",
        "CUDA_LAUNCH_BLOCKING",
        "PYTORCH_NO_CUDA_MEMORY_CACHING",
        "NVIDIA_VISIBLE_DEVICES",
    )
    seen = {n: ctx.env[n] for n in names if n in ctx.env}
    details = [f"{name}={value}" for name, value in seen.items()]
    findings = env_findings(ctx.env)
    problem = ctx.selection.problem if ctx.gpu.devices else None
    if problem:
        fix = (
            "unset CUDA_VISIBLE_DEVICES, or name an existing GPU"
            if ctx.selection.source != "--cuda-device"
            else "use --cuda-device with an existing GPU index"
        )
        return fail("cuda.env", problem, fix, details + [f.message for f in findings], variables=seen)
    worst = next((f for f in findings if f.level == "fail"), findings[0] if findings else None)
    if worst is None:
        return ok(
            "cuda.env",
            "no CUDA settings that break or slow ComfyUI" if seen else "no CUDA variables set",
            details,
            variables=seen,
        )
    make = fail if worst.level == "fail" else warn
    return make(
        "cuda.env",
        worst.message,
        worst.fix,
        details + [f.message for f in findings if f is not worst],
        variables=seen,
    )
