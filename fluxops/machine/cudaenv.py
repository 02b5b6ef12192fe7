"""Which GPU ComfyUI will compute on, and environment settings that commonly break CUDA.

CUDA's rules, applied to NVML's list: `CUDA_VISIBLE_DEVICES` is a comma-separated list of indices or
UUID prefixes (`GPU-...`, `MIG-...`); CUDA stops at the first entry it cannot resolve (the rest is ignored);
an empty value hides every GPU. ComfyUI's `--cuda-device N` replaces the variable with `N` before torch loads,
and torch computes on the first visible device. Indices are in CUDA's order, which equals NVML's (PCI bus)
order only with `CUDA_DEVICE_ORDER=PCI_BUS_ID` or when all GPUs are the same model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fluxops.machine.gpu import GpuDevice

ALLOC_CONF_VARS = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")
# Options torch's caching allocator accepts (c10/cuda/CUDAAllocatorConfig and c10/core/AllocatorConfig).
_ALLOC_KEYS = {
    "backend": re.compile(r"^(native|cudaMallocAsync)$"),
    "max_split_size_mb": re.compile(r"^\d+$"),
    "roundup_power2_divisions": re.compile(r"^(\d+|\[[\d:>,\s]*\])$"),
    "garbage_collection_threshold": re.compile(r"^(0(\.\d+)?|1(\.0+)?)$"),
    "expandable_segments": re.compile(r"^(True|False)$"),
    "pinned_use_cuda_host_register": re.compile(r"^(True|False)$"),
    "pinned_num_register_threads": re.compile(r"^\d+$"),
    "pinned_use_background_threads": re.compile(r"^(True|False)$"),
    "release_lock_on_cudamalloc": re.compile(r"^(True|False)$"),
    "per_process_memory_fraction": re.compile(r"^(0(\.\d+)?|1(\.0+)?)$"),
    "graph_capture_record_stream_reuse": re.compile(r"^(True|False)$"),
}


@dataclass(frozen=True)
class Selection:
    """The devices CUDA will see (in order), the one ComfyUI computes on, and why."""

    visible: tuple[GpuDevice, ...]
    chosen: GpuDevice | None
    source: str  # "default", "CUDA_VISIBLE_DEVICES", "--cuda-device"
    problem: str | None = None  # an entry naming no GPU, or everything hidden
    notes: tuple[str, ...] = field(default_factory=tuple)


def _resolve(entry: str, devices: Sequence[GpuDevice]) -> GpuDevice | None:
    if entry.isdigit():
        index = int(entry)
        return devices[index] if index < len(devices) else None
    if entry.upper().startswith(("GPU-", "MIG-")):
        matches = [d for d in devices if d.uuid.lower().startswith(entry.lower())]
        return matches[0] if len(matches) == 1 else None
    return None


def select_device(devices: Sequence[GpuDevice], env: Mapping[str, str], cuda_device: int | None) -> Selection:
    if cuda_device is not None:
        raw, source = str(cuda_device), "--cuda-device"
    elif "CUDA_VISIBLE_DEVICES" in env:
        raw, source = env["CUDA_VISIBLE_DEVICES"], "CUDA_VISIBLE_DEVICES"
    else:
        return Selection(
            visible=tuple(devices),
            chosen=devices[0] if devices else None,
            source="default",
            notes=_order_notes(devices, env),
        )
    visible: list[GpuDevice] = []
    problem = None
    for entry in (e.strip() for e in raw.split(",")):
        device = _resolve(entry, devices) if entry else None
        if device is None:
            if entry:
                problem = (
                    f"{source}={raw!r}: {entry!r} names no GPU (this machine has {len(devices)}: "
                    f"indices 0..{len(devices) - 1}); CUDA ignores it and everything after it"
                )
            break
        if device not in visible:
            visible.append(device)
    if not visible and problem is None:
        problem = f"{source}={raw!r} hides every GPU: torch will see none and ComfyUI falls back to the CPU"
    return Selection(
        visible=tuple(visible),
        chosen=visible[0] if visible else None,
        source=source,
        problem=problem,
        notes=_order_notes(devices, env),
    )


def _order_notes(devices: Sequence[GpuDevice], env: Mapping[str, str]) -> tuple[str, ...]:
    if len({d.name for d in devices}) > 1 and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        return (
            "GPUs of different models: CUDA numbers them fastest-first, NVML by PCI bus; set "
            "CUDA_DEVICE_ORDER=PCI_BUS_ID so the indices here match CUDA's",
        )
    return ()


@dataclass(frozen=True)
class EnvFinding:
    level: str  # "warn" or "fail"
    variable: str
    message: str
    fix: str


def _alloc_conf_findings(name: str, value: str) -> list[EnvFinding]:
    found: list[EnvFinding] = []
    for option in (o.strip() for o in value.split(",")):
        if not option:
            continue
        key, sep, val = option.partition(":")
        if not sep:
            hint = f"write {key.split('=')[0]}:{key.split('=', 1)[1]}" if "=" in key else "each option is key:value"
            found.append(
                EnvFinding(
                    "fail",
                    name,
                    f"{name}: {option!r} is not key:value; torch refuses to start CUDA with it",
                    f"fix {name} ({hint}), or unset it",
                )
            )
        elif key.strip() not in _ALLOC_KEYS:
            found.append(
                EnvFinding(
                    "fail",
                    name,
                    f"{name}: unknown option {key.strip()!r}; torch stops with 'Unrecognized CachingAllocator option'",
                    f"remove it from {name} (known: {', '.join(sorted(_ALLOC_KEYS))})",
                )
            )
        elif not _ALLOC_KEYS[key.strip()].match(val.strip()):
            found.append(
                EnvFinding(
                    "fail",
                    name,
                    f"{name}: {key.strip()}:{val.strip()!r} is not a valid value",
                    f"fix the value of {key.strip()} in {name}, or unset it",
                )
            )
    options = dict(o.partition(":")[::2] for o in value.replace(" ", "").split(",") if ":" in o)
    if options.get("backend") == "cudaMallocAsync" and options.get("expandable_segments") == "True":
        found.append(
            EnvFinding(
                "warn",
                name,
                f"{name}: expandable_segments has no effect with the cudaMallocAsync backend (ComfyUI's default)",
                "drop one of the two options, or start ComfyUI with --disable-cuda-malloc",
            )
        )
    return found


def env_findings(env: Mapping[str, str]) -> list[EnvFinding]:
    """Settings in the environment that break CUDA or slow it down badly."""
    found: list[EnvFinding] = []
    for name in ALLOC_CONF_VARS:
        if env.get(name, "").strip():
            found.extend(_alloc_conf_findings(name, env[name]))
    if env.get("CUDA_LAUNCH_BLOCKING", "0") not in ("", "0"):
        found.append(
            EnvFinding(
                "warn",
                "CUDA_LAUNCH_BLOCKING",
                "CUDA_LAUNCH_BLOCKING is set: every kernel runs "
                "synchronously (a debugging aid; generation gets much slower)",
                "unset CUDA_LAUNCH_BLOCKING",
            )
        )
    if env.get("PYTORCH_NO_CUDA_MEMORY_CACHING", "0") not in ("", "0"):
        found.append(
            EnvFinding(
                "warn",
                "PYTORCH_NO_CUDA_MEMORY_CACHING",
                "PYTORCH_NO_CUDA_MEMORY_CACHING is set: torch's allocator cache is off (slow, fragments VRAM)",
                "unset PYTORCH_NO_CUDA_MEMORY_CACHING",
            )
        )
    if env.get("NVIDIA_VISIBLE_DEVICES", "").strip().lower() in ("void", "none"):
        found.append(
            EnvFinding(
                "fail",
                "NVIDIA_VISIBLE_DEVICES",
                "NVIDIA_VISIBLE_DEVICES="
                f"{env['NVIDIA_VISIBLE_DEVICES']} (container): no GPU is passed into this container",
                "run the container with --gpus all (or NVIDIA_VISIBLE_DEVICES=all)",
            )
        )
    return found
