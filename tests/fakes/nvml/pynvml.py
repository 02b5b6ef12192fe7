"""A stand-in for nvidia-ml-py's `pynvml`, driven by a scenario JSON file named by $FAKE_NVML_SCENARIO.

It mirrors the parts of the real module fluxops.machine.gpu uses, with the real shapes: NVMLError subclasses built
from the NVML_ERROR_* codes (NVMLError(code) returns the subclass, e.g. NVMLError_LibraryNotFound), calls
before nvmlInit fail with NVMLError_Uninitialized, memory info is a ctypes structure with total/free/used in
bytes, process lists are objects with .pid/.usedGpuMemory, power is in milliwatts, the CUDA driver version is
an int like 12040, and readings a card does not support raise NVMLError_NotSupported.

Scenario keys: init_error (an NVML_ERROR_* suffix such as "LIBRARY_NOT_FOUND"), driver_version,
cuda_driver_version, process_names {pid: path}, devices [{name, uuid, serial, pci_bus_id, memory_total,
memory_used, temperature, power_mw, power_limit_mw, clock_event_reasons, ecc_volatile, ecc_aggregate,
retired_pages_sbe, retired_pages_dbe, retired_pending, display_active, compute_capability [major, minor]
(NOT_SUPPORTED when absent), compute_processes [{pid, used}],
graphics_processes [...], not_supported [function names], error (an NVML_ERROR_* suffix for the handle)}].
"""

from __future__ import annotations

import ctypes
import json
import os
import string
import sys
import typing

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_VOLATILE_ECC = 0
NVML_AGGREGATE_ECC = 1
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = 0
NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 1

nvmlClocksEventReasonGpuIdle = 0x1
nvmlClocksEventReasonApplicationsClocksSetting = 0x2
nvmlClocksEventReasonSwPowerCap = 0x4
nvmlClocksEventReasonHwSlowdown = 0x8
nvmlClocksEventReasonSyncBoost = 0x10
nvmlClocksEventReasonSwThermalSlowdown = 0x20
nvmlClocksEventReasonHwThermalSlowdown = 0x40
nvmlClocksEventReasonHwPowerBrakeSlowdown = 0x80
nvmlClocksEventReasonDisplayClockSetting = 0x100
nvmlClocksThrottleReasonGpuIdle = nvmlClocksEventReasonGpuIdle
nvmlClocksThrottleReasonSwPowerCap = nvmlClocksEventReasonSwPowerCap
nvmlClocksThrottleReasonHwSlowdown = nvmlClocksEventReasonHwSlowdown


class NVMLError(Exception):
    value: int
    _valClassMapping: typing.ClassVar[dict[int, type]] = {}
    _errcode_to_string: typing.ClassVar[dict[int, str]] = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

    def __new__(cls, value):
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __str__(self):
        return self._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other):
        return self.value == other.value

    __hash__ = Exception.__hash__


def _make_error_classes():
    module = sys.modules[__name__]
    for name in [n for n in dir(module) if n.startswith("NVML_ERROR_")]:
        class_name = "NVMLError_" + string.capwords(name.replace("NVML_ERROR_", ""), "_").replace("_", "")
        value = getattr(module, name)

        def new(cls, *args, _value=value):
            return NVMLError.__new__(cls, _value)

        cls = type(class_name, (NVMLError,), {"__new__": new})
        cls.__module__ = __name__
        setattr(module, class_name, cls)
        NVMLError._valClassMapping[value] = cls


_make_error_classes()


class c_nvmlMemory_t(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


class c_nvmlPciInfo_t(ctypes.Structure):
    _fields_ = [("busId", ctypes.c_char * 32), ("domain", ctypes.c_uint), ("bus", ctypes.c_uint)]


class nvmlFriendlyObject:
    def __init__(self, dictionary):
        for key, value in dictionary.items():
            setattr(self, key, value)


class _Handle:
    def __init__(self, index):
        self.index = index


_state: dict[str, typing.Any] = {"initialized": 0, "scenario": None}


def _scenario():
    if _state["initialized"] <= 0:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return _state["scenario"]


def _device(handle, function):
    device = _scenario()["devices"][handle.index]
    if function in device.get("not_supported", []):
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return device


def _code(suffix):
    return getattr(sys.modules[__name__], "NVML_ERROR_" + suffix)


def nvmlInit():
    with open(os.environ["FAKE_NVML_SCENARIO"], encoding="utf-8") as fh:
        scenario = json.load(fh)
    if scenario.get("init_error"):
        raise NVMLError(_code(scenario["init_error"]))
    _state["scenario"] = scenario
    _state["initialized"] += 1


def nvmlShutdown():
    _scenario()
    _state["initialized"] -= 1


def nvmlSystemGetDriverVersion():
    return _scenario()["driver_version"]


def nvmlSystemGetCudaDriverVersion():
    return _scenario()["cuda_driver_version"]


def nvmlSystemGetProcessName(pid):
    names = _scenario().get("process_names", {})
    if str(pid) not in names:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return names[str(pid)]


def nvmlDeviceGetCount():
    return len(_scenario()["devices"])


def nvmlDeviceGetHandleByIndex(index):
    devices = _scenario()["devices"]
    if not 0 <= index < len(devices):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    if devices[index].get("error"):
        raise NVMLError(_code(devices[index]["error"]))
    return _Handle(index)


def nvmlDeviceGetName(handle):
    return _device(handle, "nvmlDeviceGetName")["name"]


def nvmlDeviceGetUUID(handle):
    return _device(handle, "nvmlDeviceGetUUID")["uuid"]


def nvmlDeviceGetSerial(handle):
    return _device(handle, "nvmlDeviceGetSerial")["serial"]


def nvmlDeviceGetPciInfo(handle):
    device = _device(handle, "nvmlDeviceGetPciInfo")
    return c_nvmlPciInfo_t(busId=device["pci_bus_id"].encode())


def nvmlDeviceGetMemoryInfo(handle, version=None):
    device = _device(handle, "nvmlDeviceGetMemoryInfo")
    total, used = device["memory_total"], device["memory_used"]
    return c_nvmlMemory_t(total=total, free=total - used, used=used)


def nvmlDeviceGetTemperature(handle, sensor):
    return _device(handle, "nvmlDeviceGetTemperature")["temperature"]


def nvmlDeviceGetPowerUsage(handle):
    return _device(handle, "nvmlDeviceGetPowerUsage")["power_mw"]


def nvmlDeviceGetEnforcedPowerLimit(handle):
    return _device(handle, "nvmlDeviceGetEnforcedPowerLimit")["power_limit_mw"]


def nvmlDeviceGetCurrentClocksEventReasons(handle):
    return _device(handle, "nvmlDeviceGetCurrentClocksEventReasons").get("clock_event_reasons", 0)


nvmlDeviceGetCurrentClocksThrottleReasons = nvmlDeviceGetCurrentClocksEventReasons


def nvmlDeviceGetTotalEccErrors(handle, error_type, counter_type):
    device = _device(handle, "nvmlDeviceGetTotalEccErrors")
    return device["ecc_volatile" if counter_type == NVML_VOLATILE_ECC else "ecc_aggregate"]


def nvmlDeviceGetRetiredPages(handle, source):
    device = _device(handle, "nvmlDeviceGetRetiredPages")
    key = (
        "retired_pages_sbe"
        if source == NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
        else "retired_pages_dbe"
    )
    return list(device.get(key, []))


def nvmlDeviceGetRetiredPagesPendingStatus(handle):
    return _device(handle, "nvmlDeviceGetRetiredPagesPendingStatus").get("retired_pending", 0)


def nvmlDeviceGetDisplayActive(handle):
    return _device(handle, "nvmlDeviceGetDisplayActive").get("display_active", 0)


def nvmlDeviceGetCudaComputeCapability(handle):
    device = _device(handle, "nvmlDeviceGetCudaComputeCapability")
    if "compute_capability" not in device:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    major, minor = device["compute_capability"]
    return major, minor


def _processes(handle, key):
    device = _device(
        handle,
        "nvmlDeviceGet" + ("Compute" if key == "compute_processes" else "Graphics") + "RunningProcesses",
    )
    return [
        nvmlFriendlyObject(
            {
                "pid": p["pid"],
                "usedGpuMemory": p.get("used"),
                "gpuInstanceId": 0xFFFFFFFF,
                "computeInstanceId": 0xFFFFFFFF,
            }
        )
        for p in device.get(key, [])
    ]


def nvmlDeviceGetComputeRunningProcesses(handle):
    return _processes(handle, "compute_processes")


def nvmlDeviceGetGraphicsRunningProcesses(handle):
    return _processes(handle, "graphics_processes")
