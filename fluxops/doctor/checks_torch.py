"""Checks of ComfyUI's torch: does its build run on this driver, and does it have kernels for every GPU?

Every fix text reinstalls torch, torchvision and torchaudio together from the index the one chooser
(fluxops.machine.torchbuild) picks for this machine, as `fluxops comfy install` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fluxops.doctor.context import DoctorContext
from fluxops.doctor.result import CheckResult, fail, ok, skip, warn
from fluxops.machine.torchbuild import coverage
from fluxops.machine.torchprobe import TorchInfo


def torch_fix(ctx: DoctorContext, python: Path | str, before: str = "") -> str:
    """Reinstall torch, torchvision and torchaudio together from the index the one chooser picks for this
    machine (fluxops.machine.torchbuild, as `fluxops comfy install` does); when no build fits, why not."""
    choice = ctx.torch_choice
    command = choice.pip_command(str(python))
    if command is not None:
        return before + command
    return f"update the NVIDIA driver ({choice.problem})" if before else (choice.problem or "")


def check_torch(ctx: DoctorContext) -> CheckResult:
    python, source = ctx.comfy_python
    if python is None:
        return skip(
            "torch.cuda",
            "ComfyUI's Python not found",
            "`fluxops comfy install` installs ComfyUI with its own venv; for an existing one pass --comfyui-dir DIR "
            "(with a venv, .venv or python_embeded) or --comfyui-python PATH",
        )
    info = ctx.torch
    facts = {"python_source": source, **info.to_dict()}
    pip = torch_fix(ctx, python)
    if info.status == "no_python":
        return fail("torch.cuda", f"ComfyUI's Python {python} does not exist", "pass --comfyui-python PATH", **facts)
    if info.status == "timeout":
        return warn(
            "torch.cuda",
            f"ComfyUI's Python did not answer: {info.error}",
            "run again with a longer --torch-timeout (a first torch import can be slow)",
            **facts,
        )
    if info.status in ("crashed", "no_torch"):
        return fail("torch.cuda", f"ComfyUI's Python cannot import torch: {info.error}", pip, **facts)
    lines = [
        f"{python} ({source}): Python {info.python_version}, torch {info.torch}, "
        f"built for CUDA {info.cuda or 'none (CPU-only)'}" + (" [cached]" if info.cached else ""),
        *info.warnings,
    ]
    return _torch_against_the_driver(ctx, info, python, lines, facts)


def _torch_against_the_driver(ctx: DoctorContext, info: TorchInfo, python: Path, lines: list[str],
                              facts: dict[str, Any]) -> CheckResult:
    """An importable torch: does its build suit the GPU and the driver?"""
    driver_cuda = ctx.gpu.cuda_driver_version
    built = info.cuda_tuple
    if ctx.gpu.devices and built is None:
        return fail(
            "torch.cuda",
            f"torch {info.torch} is a {'ROCm (AMD)' if info.hip else 'CPU-only'} build on a machine with an NVIDIA GPU",
            torch_fix(ctx, python),
            lines,
            **facts,
        )
    too_new = built is not None and driver_cuda is not None and built > driver_cuda
    if too_new and (built[0] > driver_cuda[0] or not info.cuda_available):  # type: ignore[index]
        return fail(
            "torch.cuda",
            f"torch is built for CUDA {info.cuda}, the driver supports only up to {ctx.gpu.cuda_text}",
            torch_fix(ctx, python, "update the NVIDIA driver, or install a torch for your driver: "),
            lines,
            **facts,
        )
    if ctx.gpu.devices and not info.cuda_available:
        return fail(
            "torch.cuda",
            "torch cannot use the GPU (torch.cuda.is_available() is False)",
            torch_fix(ctx, python, "update the NVIDIA driver or reinstall torch: "),
            lines,
            **facts,
        )
    if too_new:
        return warn(
            "torch.cuda",
            f"torch is built for CUDA {info.cuda}, newer than the driver's "
            f"{ctx.gpu.cuda_text}: it runs on minor-version compatibility",
            "update the NVIDIA driver when convenient (some kernels may need JIT compilation)",
            lines,
            **facts,
        )
    if not ctx.gpu.devices:
        return warn(
            "torch.cuda",
            f"torch {info.torch} is installed but there is no GPU for it",
            "see gpu.driver",
            lines,
            **facts,
        )
    return ok("torch.cuda", f"torch {info.torch} (CUDA {info.cuda}) sees {info.device_count} GPU(s)", lines, **facts)


def _arch_lines(ctx: DoctorContext, info: TorchInfo) -> tuple[list[str], list[str], list[str], list[dict[str, Any]]]:
    """Per visible GPU: whether the installed torch has kernels for it. (lines, missing, ptx-only, facts)"""
    lines = [f"torch {info.torch} has kernels for: {' '.join(info.arch_list)}"]
    missing, ptx, gpus = [], [], []
    for device in ctx.selection.visible:
        capability = device.compute_capability
        label = f"GPU {device.index} {device.name}" + (f" (sm_{capability[0]}{capability[1]})" if capability else "")
        how = coverage(info.arch_list, capability) if capability else "unknown"
        gpus.append({"index": device.index, "name": device.name, "compute_capability": capability, "coverage": how})
        lines.append(f"{label}: " + {"kernels": "kernels built for it", "ptx": "only PTX, compiled at first use",
                                     "unknown": "NVML does not say its architecture"}.get(how or "", "no kernels"))
        if how is None:
            missing.append(label)
        elif how == "ptx":
            ptx.append(label)
    return lines, missing, ptx, gpus


def check_torch_arch(ctx: DoctorContext) -> CheckResult:
    """A GPU whose architecture the installed torch has no kernels for fails at the first kernel ("no kernel
    image is available for execution on the device")."""
    python, _source = ctx.comfy_python
    if python is None:
        return skip("torch.arch", "ComfyUI's Python not found (see torch.cuda)")
    info = ctx.torch
    if info.status != "ok" or not info.cuda:
        return skip("torch.arch", "no CUDA build of torch to check (see torch.cuda)")
    if not ctx.selection.visible:
        return skip("torch.arch", "no GPU visible to CUDA (see gpu.devices)")
    if not info.arch_list:
        return skip("torch.arch", "torch reported no kernel architectures: CUDA is not usable (see torch.cuda)")
    lines, missing, ptx, gpus = _arch_lines(ctx, info)
    facts = {"arch_list": list(info.arch_list), "gpus": gpus}
    if missing:
        return fail("torch.arch", f"torch {info.torch} has no kernels for " + ", ".join(missing),
                    torch_fix(ctx, python), lines, **facts)
    if ptx:
        return warn("torch.arch", f"torch {info.torch} runs on " + ", ".join(ptx) + " only through PTX compiled at "
                    "first use (slow first start)", torch_fix(ctx, python), lines, **facts)
    return ok("torch.arch", f"torch {info.torch} has kernels for every GPU CUDA sees", lines, **facts)
