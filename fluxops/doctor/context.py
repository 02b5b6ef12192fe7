"""Everything the checks look at, probed at most once per run and only when a check asks for it.

Running a subset of checks (`fluxops doctor gpu.driver`) then costs only the probes that subset needs.
The machine's memory and free disk space are read through two seams (`memory`, `disk_free`) that a test
can hand fixed figures.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fluxops.errors import FluxopsError
from fluxops.machine.cudaenv import Selection, select_device
from fluxops.machine.gpu import GpuProbe, probe_gpus
from fluxops.machine.torchprobe import TorchInfo, probe_torch
from fluxops.machine.vram import Budget
from fluxops.models.manifest import Manifest, load_manifest
from fluxops.settings import Settings
from fluxops.setup.preflight import existing_parent

if TYPE_CHECKING:
    from fluxops.comfy.ownership import PortOwner
    from fluxops.comfy.state import ServerState
    from fluxops.doctor.checks_models import ModelScan
    from fluxops.machine.torchbuild import TorchChoice


@dataclass(frozen=True)
class DoctorOptions:
    online: bool = False
    width: int = 1024
    height: int = 1024
    cuda_device: int | None = None  # ComfyUI's --cuda-device, when it will be started with one
    torch_timeout: float = 60.0


@dataclass(frozen=True)
class Memory:
    total: int
    available: int
    swap_free: int


def read_memory() -> Memory:
    import psutil

    mem, swap = psutil.virtual_memory(), psutil.swap_memory()
    return Memory(mem.total, mem.available, swap.free)


def disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


class DoctorContext:
    def __init__(self, settings: Settings, options: DoctorOptions, env: Mapping[str, str], *,
                 memory: Callable[[], Memory] = read_memory, disk_free: Callable[[Path], int] = disk_free):
        self.settings = settings
        self.options = options
        self.env = env
        self._read_memory = memory
        self._disk_free = disk_free

    @functools.cached_property
    def memory(self) -> Memory:
        return self._read_memory()

    def free_at(self, path: Path) -> tuple[Path, int] | None:
        """Free bytes on the file system that holds path (or its nearest existing parent), and that parent."""
        place = existing_parent(path)
        try:
            return place, self._disk_free(place)
        except OSError:
            return None

    @functools.cached_property
    def gpu(self) -> GpuProbe:
        return probe_gpus()

    @functools.cached_property
    def selection(self) -> Selection:
        return select_device(self.gpu.devices, self.env, self.options.cuda_device)

    @functools.cached_property
    def _manifest_load(self) -> Manifest | FluxopsError:
        try:
            return load_manifest(self.settings.manifest)
        except FluxopsError as exc:
            return exc

    @property
    def manifest(self) -> Manifest:
        """The manifest; raises its load error (the same one on every call) when it cannot be used."""
        loaded = self._manifest_load
        if isinstance(loaded, FluxopsError):
            raise loaded
        return loaded

    @property
    def manifest_or_none(self) -> Manifest | None:
        """The manifest, or None for the checks that do without one (`models` reports why)."""
        loaded = self._manifest_load
        return None if isinstance(loaded, FluxopsError) else loaded

    @functools.cached_property
    def models(self) -> ModelScan | None:
        from fluxops.doctor.checks_models import scan_models

        manifest = self.manifest_or_none
        if manifest is None or self.settings.models_dir is None:
            return None
        try:
            return scan_models(manifest, self.settings)
        except FluxopsError:  # models dir is not a directory: check_models reports it
            return None

    @functools.cached_property
    def budget(self) -> Budget | None:
        """The VRAM budget on ComfyUI's GPU; the ComfyUI fluxops started counts as free (it is the workload)."""
        from fluxops.machine.vram import workflow_budget

        chosen, manifest = self.selection.chosen, self.manifest_or_none
        if chosen is None or manifest is None:
            return None
        return workflow_budget(
            manifest,
            self.found_paths,
            chosen,
            self.comfy_pid,
            self.options.width,
            self.options.height,
        )

    @property
    def found_paths(self) -> dict[str, Path]:
        """Manifest file id -> where the file is, for the files present (their headers give exact sizes)."""
        scan = self.models
        return scan.found_paths() if scan is not None else {}

    @functools.cached_property
    def comfy_python(self) -> tuple[Path | None, str]:
        from fluxops.comfy.install import find_python

        return find_python(self.settings.comfyui_dir, self.settings.comfyui_python)

    @functools.cached_property
    def torch(self) -> TorchInfo:
        python, _source = self.comfy_python
        return probe_torch(
            python,
            self.settings.torch_cache_path,
            self.env,
            timeout=self.options.torch_timeout,
            driver_version=self.gpu.driver_version,
        )

    @functools.cached_property
    def torch_choice(self) -> TorchChoice:
        """The torch build for this machine: the one chooser `fluxops comfy install` uses, for every fix text."""
        import sys

        from fluxops.machine.amdgpu import amd_rocm_present
        from fluxops.machine.torchbuild import choose_torch, machine_facts

        facts = machine_facts(self.gpu, self.env, amd_rocm=amd_rocm_present(), platform=sys.platform)
        return choose_torch(facts, index_base=self.settings.torch_index_base)

    @functools.cached_property
    def comfy_record(self) -> ServerState | None:
        """The ComfyUI fluxops started, while its process runs (read from its record: no HTTP)."""
        from fluxops.comfy.state import running_record

        return running_record(self.settings)

    @property
    def comfy_pid(self) -> int | None:
        """The pid of the ComfyUI fluxops started, while it runs: its VRAM is the workload's own."""
        record = self.comfy_record
        return record.pid if record is not None else None

    @functools.cached_property
    def server(self) -> PortOwner:
        """Who holds ComfyUI's port (asked over HTTP: only the comfyui checks use it)."""
        from fluxops.comfy.ownership import who_holds

        return who_holds(self.settings)
