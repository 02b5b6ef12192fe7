"""Checks of the interpreter, RAM and disk space (the model files: `checks_models`)."""

from __future__ import annotations

import platform
import sys

from fluxops.doctor.context import DoctorContext
from fluxops.doctor.result import CheckResult, fail, ok, skip, warn
from fluxops.setup.preflight import DISK_MARGIN
from fluxops.units import GIB, gib

RUNTIME_RAM = 2 * GIB  # Python, torch and ComfyUI themselves
OUTPUT_MIN_FREE = 1 * GIB  # ~600 images of 1024x1024 PNG


def check_python(ctx: DoctorContext) -> CheckResult:
    version = platform.python_version()
    facts = {
        "version": version,
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    summary = f"Python {version} on {platform.system()} {platform.machine()}"
    details = [f"{sys.executable}", platform.platform()]
    return ok("python", summary, details, **facts)


def _weights_bytes(ctx: DoctorContext) -> tuple[int, int] | None:
    """(all model weights, the largest one), from headers where the files are present."""
    from fluxops.machine.vram import model_weights

    manifest = ctx.manifest_or_none
    if manifest is None:
        return None
    weights = model_weights(manifest, ctx.found_paths)
    return sum(w.bytes for w in weights), max(w.bytes for w in weights)


def check_ram(ctx: DoctorContext) -> CheckResult:
    mem = ctx.memory
    sizes = _weights_bytes(ctx)
    facts = {"total_bytes": mem.total, "available_bytes": mem.available, "swap_free_bytes": mem.swap_free}
    summary = f"{gib(mem.available)} of {gib(mem.total)} RAM available"
    if sizes is None:
        return ok("system.ram", summary + " (no manifest to compare with)", **facts)
    total, largest = sizes
    need, minimum = total + RUNTIME_RAM, largest + RUNTIME_RAM
    facts.update(needed_bytes=need, minimum_bytes=minimum)
    details = [
        f"loading every model needs about {gib(need)} (ComfyUI keeps models it moves off the GPU in RAM); "
        f"the largest alone {gib(minimum)}",
        f"swap free: {gib(mem.swap_free)}",
    ]
    if mem.available >= need:
        return ok("system.ram", summary + f", {gib(need)} needed", details, **facts)
    if mem.available + mem.swap_free >= minimum:
        return warn(
            "system.ram",
            summary + f", {gib(need)} needed: ComfyUI will swap or reload models from disk",
            "close other programs, add RAM, or add swap (e.g. a 16 GB swap file)",
            details,
            **facts,
        )
    return fail(
        "system.ram",
        summary + f": not enough to load the largest model ({gib(minimum)})",
        "close other programs or add RAM/swap",
        details,
        **facts,
    )


def check_disk(ctx: DoctorContext) -> CheckResult:
    details: list[str] = []
    facts: dict[str, object] = {}
    problems: list[tuple[str, str, str]] = []  # (level, message, fix)
    scan = ctx.models
    if scan is not None:
        needed = scan.bytes_to_download
        where = ctx.free_at(scan.models_dir)
        free = where[1] if where else 0
        facts.update(models_dir=str(scan.models_dir), models_free_bytes=free, bytes_to_download=needed)
        details.append(
            f"models: {gib(free)} free at {where[0] if where else scan.models_dir}, {gib(needed)} still to download"
        )
        if needed and free < needed + DISK_MARGIN:  # the same test `fluxops setup` makes before downloading
            problems.append(
                (
                    "fail",
                    f"{gib(needed)} still to download but only {gib(free)} free for the models",
                    f"free {gib(needed + DISK_MARGIN - free)} at {scan.models_dir}, or point --models-dir elsewhere",
                )
            )
    out = ctx.free_at(ctx.settings.output_dir)
    if out is not None:
        facts.update(output_dir=str(ctx.settings.output_dir), output_free_bytes=out[1])
        details.append(f"outputs: {gib(out[1])} free at {out[0]}")
        if out[1] < OUTPUT_MIN_FREE:
            problems.append(
                (
                    "warn",
                    f"only {gib(out[1])} free for images at {ctx.settings.output_dir}",
                    "free some space or set output_dir elsewhere",
                )
            )
    if not details:
        return skip("system.disk", "no models or output folder to check", "pass --models-dir DIR")
    if problems:
        level, message, fix = next((p for p in problems if p[0] == "fail"), problems[0])
        return (fail if level == "fail" else warn)("system.disk", message, fix, details, **facts)
    return ok("system.disk", "enough free space for the models and the images", details, **facts)
