"""The NVML seam: what the NVIDIA driver says about its GPUs, as plain data.

`pynvml` (from nvidia-ml-py, NVIDIA's own binding) is imported lazily inside `probe_gpus`, so a machine
without the library or the driver gets a `GpuProbe` that says so, never an exception. Tests put a fake
`pynvml` module first on the path; nothing here knows about it.

Every per-device reading is optional: consumer cards answer NOT_SUPPORTED for ECC, serials and retired
pages, and a reading the driver refuses must not hide the others. The maintain job reuses the health
fields (temperature, throttle reasons, ECC errors, retired pages).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# Clock-event (throttle) reason bits, named as NVML names them; GpuIdle is normal and not a problem.
_REASON_NAMES = (
    ("GpuIdle", "gpu_idle"),
    ("ApplicationsClocksSetting", "applications_clocks_setting"),
    ("SwPowerCap", "sw_power_cap"),
    ("HwSlowdown", "hw_slowdown"),
    ("SyncBoost", "sync_boost"),
    ("SwThermalSlowdown", "sw_thermal_slowdown"),
    ("HwThermalSlowdown", "hw_thermal_slowdown"),
    ("HwPowerBrakeSlowdown", "hw_power_brake_slowdown"),
    ("DisplayClockSetting", "display_clock_setting"),
)
HARMLESS_REASONS = frozenset({"gpu_idle", "applications_clocks_setting", "display_clock_setting", "sync_boost"})
HOT_C = 85  # sustained temperatures at or above this shorten a GPU's life and trigger thermal throttling


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str | None
    used_bytes: int | None  # None where the driver cannot tell (Windows WDDM)
    kind: str  # "compute" or "graphics"


@dataclass(frozen=True)
class GpuDevice:
    index: int  # NVML index (PCI bus order)
    name: str
    uuid: str
    serial: str | None
    pci_bus_id: str | None
    memory_total: int
    memory_used: int
    memory_free: int
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    throttle_reasons: tuple[str, ...] = ()
    ecc_uncorrected_volatile: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    retired_pages: int | None = None
    retired_pages_pending: bool | None = None
    display_active: bool | None = None
    processes: tuple[GpuProcess, ...] = ()
    compute_capability: tuple[int, int] | None = None  # (8, 9) for sm_89; which torch kernels run on it

    @property
    def problem_reasons(self) -> tuple[str, ...]:
        return tuple(r for r in self.throttle_reasons if r not in HARMLESS_REASONS)

    def health_problems(self) -> tuple[str, ...]:
        """What about this GPU's health needs a person: heat, throttling, ECC errors, pages to retire."""
        problems = []
        if self.temperature_c is not None and self.temperature_c >= HOT_C:
            problems.append(f"GPU {self.index} is at {self.temperature_c} °C")
        if self.problem_reasons:
            problems.append(f"GPU {self.index} clocks are held back: {', '.join(self.problem_reasons)}")
        if self.ecc_uncorrected_volatile:
            problems.append(f"GPU {self.index} has {self.ecc_uncorrected_volatile} uncorrected ECC errors since boot")
        if self.retired_pages_pending:
            problems.append(f"GPU {self.index} has memory pages waiting to be retired (needs a reboot)")
        return tuple(problems)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GpuProbe:
    """What NVML answered. ``error_kind``: not_installed, library_not_found, driver_not_loaded,
    no_permission, version_mismatch, other; None when NVML loaded."""

    loaded: bool
    driver_version: str | None = None
    cuda_driver_version: tuple[int, int] | None = None  # the highest CUDA the driver supports
    devices: tuple[GpuDevice, ...] = ()
    error_kind: str | None = None
    error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cuda_text(self) -> str | None:
        return f"{self.cuda_driver_version[0]}.{self.cuda_driver_version[1]}" if self.cuda_driver_version else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "loaded": self.loaded,
            "driver_version": self.driver_version,
            "cuda_driver_version": self.cuda_text,
            "devices": [d.to_dict() for d in self.devices],
            "error_kind": self.error_kind,
            "error": self.error,
        }


def _error_kind(nvml: Any, exc: Exception) -> str:
    value = getattr(exc, "value", None)
    kinds = {
        getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", -1): "library_not_found",
        getattr(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", -1): "driver_not_loaded",
        getattr(nvml, "NVML_ERROR_NO_PERMISSION", -1): "no_permission",
        getattr(nvml, "NVML_ERROR_LIB_RM_VERSION_MISMATCH", -1): "version_mismatch",
    }
    return kinds.get(value, "other")


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _reasons(nvml: Any, mask: int) -> tuple[str, ...]:
    names = []
    for nvml_name, ours in _REASON_NAMES:
        bit = getattr(nvml, f"nvmlClocksEventReason{nvml_name}", None)
        if bit is None:
            bit = getattr(nvml, f"nvmlClocksThrottleReason{nvml_name}", 0)
        if bit and mask & bit:
            names.append(ours)
    return tuple(names)


class _Reader:
    """Calls NVML, turning a refused reading (NOT_SUPPORTED, NO_PERMISSION...) into None."""

    def __init__(self, nvml: Any):
        self.nvml = nvml

    def get(self, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None

    def process_name(self, pid: int) -> str | None:
        name = self.get(self.nvml.nvmlSystemGetProcessName, pid)
        if name:
            return _text(name).rsplit("/", 1)[-1]
        try:  # NVML may refuse (permissions, containers); psutil can often still tell
            import psutil

            return str(psutil.Process(pid).name())
        except Exception:
            return None

    def processes(self, handle: Any) -> tuple[GpuProcess, ...]:
        found: dict[int, GpuProcess] = {}
        for kind, fn_name in (
            ("compute", "nvmlDeviceGetComputeRunningProcesses"),
            ("graphics", "nvmlDeviceGetGraphicsRunningProcesses"),
        ):
            for info in self.get(getattr(self.nvml, fn_name), handle) or []:
                pid = int(info.pid)
                if pid in found:
                    continue
                used = info.usedGpuMemory
                found[pid] = GpuProcess(
                    pid=pid,
                    name=self.process_name(pid),
                    used_bytes=None if used is None else int(used),
                    kind=kind,
                )
        return tuple(found.values())

    def reasons(self, handle: Any) -> tuple[str, ...]:
        fn = (
            getattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        )
        mask = self.get(fn, handle)
        return _reasons(self.nvml, int(mask)) if mask is not None else ()

    def device(self, index: int) -> GpuDevice:
        nv, get = self.nvml, self.get
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        mem = nv.nvmlDeviceGetMemoryInfo(handle)
        pci = get(nv.nvmlDeviceGetPciInfo, handle)
        power = get(nv.nvmlDeviceGetPowerUsage, handle)  # milliwatts
        limit = get(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
        serial = get(nv.nvmlDeviceGetSerial, handle)
        pending = get(nv.nvmlDeviceGetRetiredPagesPendingStatus, handle)
        display = get(nv.nvmlDeviceGetDisplayActive, handle)
        capability = get(nv.nvmlDeviceGetCudaComputeCapability, handle)
        retired = None
        single = get(nv.nvmlDeviceGetRetiredPages, handle, nv.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS)
        double = get(nv.nvmlDeviceGetRetiredPages, handle, nv.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
        if single is not None or double is not None:
            retired = len(single or []) + len(double or [])
        ecc = nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        return GpuDevice(
            index=index,
            name=_text(nv.nvmlDeviceGetName(handle)),
            uuid=_text(nv.nvmlDeviceGetUUID(handle)),
            serial=_text(serial) if serial else None,
            pci_bus_id=_text(pci.busId) if pci is not None else None,
            memory_total=int(mem.total),
            memory_used=int(mem.used),
            memory_free=int(mem.free),
            temperature_c=get(nv.nvmlDeviceGetTemperature, handle, nv.NVML_TEMPERATURE_GPU),
            power_w=power / 1000 if power is not None else None,
            power_limit_w=limit / 1000 if limit is not None else None,
            throttle_reasons=self.reasons(handle),
            ecc_uncorrected_volatile=get(nv.nvmlDeviceGetTotalEccErrors, handle, ecc, nv.NVML_VOLATILE_ECC),
            ecc_uncorrected_aggregate=get(nv.nvmlDeviceGetTotalEccErrors, handle, ecc, nv.NVML_AGGREGATE_ECC),
            retired_pages=retired,
            retired_pages_pending=None if pending is None else bool(pending),
            display_active=None if display is None else bool(display),
            processes=self.processes(handle),
            compute_capability=(int(capability[0]), int(capability[1])) if capability else None,
        )


def _cuda_version(code: int | None) -> tuple[int, int] | None:
    """NVML reports e.g. 12040 for CUDA 12.4."""
    if not code:
        return None
    return code // 1000, (code % 1000) // 10


def probe_gpus() -> GpuProbe:
    """Ask the NVIDIA driver about its GPUs. Never raises: a missing library or driver is a finding."""
    try:
        import pynvml as nvml
    except ImportError as exc:
        return GpuProbe(loaded=False, error_kind="not_installed", error=f"nvidia-ml-py is not installed ({exc})")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return GpuProbe(loaded=False, error_kind=_error_kind(nvml, exc), error=str(exc))
    except OSError as exc:  # a broken libnvidia-ml.so can fail to load outside NVML's own checks
        return GpuProbe(loaded=False, error_kind="library_not_found", error=str(exc))
    try:
        reader = _Reader(nvml)
        driver = reader.get(nvml.nvmlSystemGetDriverVersion)
        cuda = _cuda_version(reader.get(nvml.nvmlSystemGetCudaDriverVersion))
        devices, notes = [], []
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                devices.append(reader.device(index))
            except nvml.NVMLError as exc:  # e.g. GPU_IS_LOST: report it, keep the other GPUs
                notes.append(f"GPU {index}: {exc}")
        return GpuProbe(
            loaded=True,
            driver_version=_text(driver) if driver else None,
            cuda_driver_version=cuda,
            devices=tuple(devices),
            notes=tuple(notes),
        )
    except nvml.NVMLError as exc:
        return GpuProbe(loaded=False, error_kind=_error_kind(nvml, exc), error=str(exc))
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()
