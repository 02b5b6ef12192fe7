"""Everything the checks look at, probed at most once per run and only when a check asks for it.

Running a subset of checks (`fluxops doctor gpu.driver`) then costs only the probes that subset needs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxops.errors import FluxopsError
from fluxops.machine.cudaenv import Selection, select_device
from fluxops.machine.gpu import GpuProbe, probe_gpus
from fluxops.machine.torchprobe import TorchInfo, probe_torch
from fluxops.machine.vram import Budget
from fluxops.models.manifest import Manifest, load_manifest
from fluxops.settings import Settings

if TYPE_CHECKING:
    from fluxops.comfy.ownership import PortOwner
    from fluxops.comfy.state import ServerState


@dataclass(frozen=True)
class DoctorOptions:
    online: bool = False
    width: int = 1024
    height: int = 1024
    cuda_device: int | None = None  # ComfyUI's --cuda-device, when it will be started with one
    torch_timeout: float = 60.0


class DoctorContext:
    def __init__(self, settings: Settings, options: DoctorOptions, env: Mapping[str, str]):
        self.settings = settings
        self.options = options
        self.env = env

    @functools.cached_property
    def gpu(self) -> GpuProbe:
        return probe_gpus()

    @functools.cached_property
    def selection(self) -> Selection:
        return select_device(self.gpu.devices, self.env, self.options.cuda_device)

    @functools.cached_property
    def manifest(self) -> Manifest | FluxopsError:
        try:
            return load_manifest(self.settings.manifest)
        except FluxopsError as exc:
            return exc

    @functools.cached_property
    def models(self) -> Any:
        from fluxops.doctor.checks_models import scan_models

        manifest = self.manifest
        if isinstance(manifest, FluxopsError) or self.settings.models_dir is None:
            return None
        try:
            return scan_models(manifest, self.settings)
        except FluxopsError:  # models dir is not a directory: check_models reports it
            return None

    @functools.cached_property
    def budget(self) -> Budget | None:
        """The VRAM budget on ComfyUI's GPU; the ComfyUI fluxops started counts as free (it is the workload)."""
        from fluxops.machine.vram import workflow_budget

        chosen, manifest = self.selection.chosen, self.manifest
        if chosen is None or isinstance(manifest, FluxopsError):
            return None
        scan = self.models
        record = self.comfy_record
        return workflow_budget(
            manifest,
            scan.found_paths() if scan is not None else {},
            chosen,
            record.pid if record is not None else None,
            self.options.width,
            self.options.height,
        )

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
    def comfy_record(self) -> ServerState | None:
        """The ComfyUI fluxops started, while its process runs (read from its record: no HTTP)."""
        from fluxops.comfy.state import running_record

        return running_record(self.settings)

    @functools.cached_property
    def server(self) -> PortOwner:
        """Who holds ComfyUI's port (asked over HTTP: only the comfyui checks use it)."""
        from fluxops.comfy.ownership import who_holds

        return who_holds(self.settings)
