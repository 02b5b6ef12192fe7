"""The one place that decides which PyTorch build a machine gets: `fluxops comfy install` installs it and
doctor's torch fix texts name it.

A torch wheel carries its own CUDA runtime; what it needs from the host is a driver that runs that CUDA and
GPUs its kernels were built for. So the choice is the newest build in `BUILDS` that

- the driver can run: its CUDA is not above the driver's ceiling (NVML's nvmlSystemGetCudaDriverVersion), or
  is a newer minor of the same major, which NVIDIA's minor-version compatibility runs (a CUDA 12.x runtime on
  any 12.x driver, 13.x on any R580+ driver; features that need a newer driver fail at use, and PTX cannot be
  JIT-compiled) — https://docs.nvidia.com/deploy/cuda-compatibility/ ;
- has kernels for every GPU: a cubin for sm_XY runs on compute capability X.Z with Z >= Y (same major), PTX
  for compute_XY is JIT-compiled for any later GPU —
  https://docs.nvidia.com/cuda/cuda-c-programming-guide/#binary-compatibility ;
- ships torch, torchvision and torchaudio (ComfyUI imports all three).

No NVIDIA GPU: the ROCm build when an AMD GPU with the ROCm kernel driver is there (Linux), else the CPU build.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fluxops.machine.gpu import GpuProbe

DEFAULT_INDEX_BASE = "https://download.pytorch.org/whl"


@dataclass(frozen=True)
class TorchRelease:
    """Versions that go together: torchvision pins its torch exactly; torchaudio 2.11 is its last release
    and supports torch >= 2.11 (https://github.com/pytorch/audio/pull/4212)."""

    torch: str
    torchvision: str
    torchaudio: str
    python: str  # the Pythons it has wheels for, as a PEP 440 specifier


@dataclass(frozen=True)
class Variant:
    """One build of a release, as its index `<base>/<tag>` serves it."""

    tag: str  # "cu130", "cpu", "rocm7.14": the index name and the local version label
    release: TorchRelease
    cuda: tuple[int, int] | None = None
    archs: tuple[str, ...] = ()  # torch.cuda.get_arch_list() of the build
    torchaudio: bool = True  # False where the index lacks a torchaudio for this release
    installed_gib: float = 6.0  # roughly what torch and its libraries take in the venv
    note: str = ""

    @property
    def kind(self) -> str:
        if self.cuda:
            return "cuda"
        return "rocm" if self.tag.startswith("rocm") else ("cpu" if self.tag == "cpu" else "unknown")

    @property
    def cuda_text(self) -> str | None:
        return f"{self.cuda[0]}.{self.cuda[1]}" if self.cuda else None


# The builds, newest preferred first. Sources, re-checked for each figure:
# - torch 2.14 ships CUDA 13.2 (the PyPI default), 13.0 and 12.6 (legacy): RFC
#   https://github.com/pytorch/pytorch/issues/190355 ; the architectures per CUDA version are PyTorch's
#   RELEASE.md "PyTorch CUDA Support Matrix" (https://github.com/pytorch/pytorch/pull/197555, "For Release
#   2.12, 2.13 and 2.14"): 12.6 sm_50..sm_90; 13.0 and 13.2 sm_75..sm_120 + PTX (Linux builds only).
#   torchvision 0.29 pairs with torch 2.14 (https://github.com/PyTorchKR/pytorch.kr/pull/119, from PyTorch's
#   published_versions.json, ROCm 7.14 the ROCm build of 2.14).
# - The cu132 index has no torchaudio for current torch: https://github.com/pytorch/pytorch/issues/193651,
#   https://github.com/Comfy-Org/ComfyUI/issues/14232 ; ComfyUI's requirements.txt lists torchaudio.
# - CUDA 12.8 was dropped in 2.12 (RFC https://github.com/pytorch/pytorch/issues/178665), so torch 2.11 is the
#   last release with a CUDA 12 build for Blackwell (R570 drivers): 12.8 sm_75..sm_120, Volta dropped
#   (https://github.com/pytorch/pytorch/pull/175253, RFC https://github.com/pytorch/pytorch/issues/172663).
TORCH_2_14 = TorchRelease("2.14.1", "0.29.1", "2.11.0", ">=3.10,<3.15")
TORCH_2_11 = TorchRelease("2.11.0", "0.26.0", "2.11.0", ">=3.10,<3.15")
_TURING_TO_BLACKWELL = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
_MAXWELL_TO_HOPPER = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")

BUILDS: tuple[Variant, ...] = (
    Variant("cu132", TORCH_2_14, (13, 2), (*_TURING_TO_BLACKWELL, "compute_120"), torchaudio=False,
            installed_gib=5.0, note="no torchaudio on the cu132 index (pytorch/pytorch#193651)"),
    Variant("cu130", TORCH_2_14, (13, 0), (*_TURING_TO_BLACKWELL, "compute_120"), installed_gib=5.0),
    Variant("cu126", TORCH_2_14, (12, 6), _MAXWELL_TO_HOPPER, installed_gib=5.5),
    Variant("cu128", TORCH_2_11, (12, 8), _TURING_TO_BLACKWELL, installed_gib=6.0),
)
CPU = Variant("cpu", TORCH_2_14, installed_gib=0.9)
ROCM = Variant("rocm7.14", TORCH_2_14, installed_gib=14.0)
ALL_VARIANTS: tuple[Variant, ...] = (*BUILDS, CPU, ROCM)
UNKNOWN = Variant("index", TORCH_2_14)  # an index given by --torch-index that is none of the above

# The first CUDA release that knows each GPU generation (NVIDIA's CUDA Toolkit release notes,
# https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/): a driver whose ceiling is below it cannot run the
# GPU with any torch, and the fix is a newer driver.
_FIRST_CUDA = {(5, 0): (6, 5), (6, 0): (8, 0), (7, 0): (9, 0), (7, 5): (10, 0), (8, 0): (11, 0), (8, 6): (11, 1),
               (8, 9): (11, 8), (9, 0): (11, 8), (10, 0): (12, 8), (12, 0): (12, 8)}


@dataclass(frozen=True)
class GpuArch:
    index: int
    name: str
    capability: tuple[int, int]  # NVML nvmlDeviceGetCudaComputeCapability

    @property
    def sm(self) -> str:
        return f"sm_{self.capability[0]}{self.capability[1]}"

    @property
    def label(self) -> str:
        return f"GPU {self.index} {self.name} ({self.sm})"


@dataclass(frozen=True)
class MachineFacts:
    """What the choice depends on. ``nvidia_problem``: why NVML could not answer although a driver is there
    (not loaded, version mismatch, no permission); None when it answered or there is no NVIDIA driver."""

    gpus: tuple[GpuArch, ...] = ()
    cuda_ceiling: tuple[int, int] | None = None
    driver_version: str | None = None
    nvidia_problem: str | None = None
    amd_rocm: bool = False
    platform: str = "linux"  # sys.platform's family: linux, win32, darwin


@dataclass(frozen=True)
class TorchChoice:
    """The build for this machine, or why there is none (``variant`` None and ``problem`` set)."""

    variant: Variant | None
    index_url: str | None
    reason: str
    skipped: tuple[str, ...] = ()  # why each newer build was passed over
    notes: tuple[str, ...] = ()
    problem: str | None = None
    source: str = "chosen"  # "chosen", "--cpu", "--torch-index"
    label: bool = True  # whether the index names its builds with a local version label (+cu130)

    @property
    def tag(self) -> str | None:
        return self.variant.tag if self.variant else None

    def requirements(self) -> list[str]:
        """The three packages at matching versions, with this build's label where the index uses one."""
        if self.variant is None:
            return []
        release, suffix = self.variant.release, f"+{self.variant.tag}" if self.label else ""
        return [f"torch=={release.torch}{suffix}", f"torchvision=={release.torchvision}{suffix}",
                f"torchaudio=={release.torchaudio}{suffix}"]

    def pins(self) -> list[str]:
        """Version pins without labels: what keeps a later pip run from moving torch to another release."""
        if self.variant is None:
            return []
        release = self.variant.release
        return [f"torch=={release.torch}", f"torchvision=={release.torchvision}",
                f"torchaudio=={release.torchaudio}"]

    def pip_command(self, python: str) -> str | None:
        """The command that reinstalls the three packages together from this index."""
        if self.variant is None or self.index_url is None:
            return None
        return (f"{python} -m pip install --force-reinstall " + " ".join(self.requirements())
                + f" --index-url {self.index_url}")

    def to_dict(self) -> dict[str, object]:
        return {"variant": self.tag, "index_url": self.index_url, "reason": self.reason, "source": self.source,
                "cuda": self.variant.cuda_text if self.variant else None,
                "requirements": self.requirements(), "skipped": list(self.skipped), "notes": list(self.notes),
                "problem": self.problem}


_NO_NVIDIA = ("library_not_found", "not_installed")  # no driver at all: not a GPU box (as far as NVIDIA goes)


def machine_facts(probe: GpuProbe, env: Mapping[str, str], amd_rocm: bool = False, platform: str = "linux"
                  ) -> MachineFacts:
    """The chooser's input from what NVML answered, for the GPUs CUDA will see (CUDA_VISIBLE_DEVICES)."""
    from fluxops.machine.cudaenv import select_device

    if not probe.loaded:
        problem = None if probe.error_kind in _NO_NVIDIA else (probe.error or probe.error_kind)
        return MachineFacts(nvidia_problem=problem, amd_rocm=amd_rocm, platform=platform)
    visible = select_device(probe.devices, env, None).visible
    if not visible:
        return MachineFacts(nvidia_problem=f"driver {probe.driver_version} is loaded but CUDA sees no GPU",
                            driver_version=probe.driver_version, amd_rocm=amd_rocm, platform=platform)
    unknown = [d for d in visible if d.compute_capability is None]
    if unknown:
        return MachineFacts(nvidia_problem=f"NVML does not say which architecture GPU {unknown[0].index} is",
                            driver_version=probe.driver_version, platform=platform)
    gpus = tuple(GpuArch(d.index, d.name, d.compute_capability) for d in visible if d.compute_capability)
    return MachineFacts(gpus=gpus, cuda_ceiling=probe.cuda_driver_version, driver_version=probe.driver_version,
                        amd_rocm=amd_rocm, platform=platform)


def index_url(base: str, tag: str) -> str:
    return f"{base.rstrip('/')}/{tag}"


def _uses_label(variant: Variant, platform: str) -> bool:
    # download.pytorch.org labels its Linux and Windows wheels (+cu130, +cpu, +rocm7.14); its macOS wheels
    # carry no label.
    return not (platform == "darwin" and variant.kind == "cpu")


def _arch_numbers(arch: str) -> tuple[str, tuple[int, int]]:
    kind, _, number = arch.partition("_")
    value = int(number)
    return kind, (value // 10, value % 10)


def coverage(archs: Sequence[str], capability: tuple[int, int], jit: bool = True) -> str | None:
    """'kernels' when a cubin runs on this GPU, 'ptx' when only JIT-compiled PTX does, else None."""
    parsed = [_arch_numbers(a) for a in archs]
    if any(kind == "sm" and arch[0] == capability[0] and arch[1] <= capability[1] for kind, arch in parsed):
        return "kernels"
    if jit and any(kind == "compute" and arch <= capability for kind, arch in parsed):
        return "ptx"
    return None


def runs_on(variant: Variant, ceiling: tuple[int, int]) -> str | None:
    """'native' when the driver runs the build's CUDA, 'minor-version compatibility' when it runs it only by
    NVIDIA's minor-version compatibility, else None."""
    assert variant.cuda is not None
    if variant.cuda <= ceiling:
        return "native"
    if variant.cuda[0] == ceiling[0] and ceiling[0] >= 12:
        return "minor-version compatibility"
    return None


def _first_cuda(capability: tuple[int, int]) -> tuple[int, int]:
    known = [cap for cap in _FIRST_CUDA if cap <= capability]
    return _FIRST_CUDA[max(known)] if known else (0, 0)


def _too_new_for_driver(gpus: Sequence[GpuArch], ceiling: tuple[int, int]) -> str | None:
    for gpu in gpus:
        needed = _first_cuda(gpu.capability)
        if needed > ceiling:
            return (f"{gpu.label} needs a driver for CUDA {needed[0]}.{needed[1]} or newer, this driver runs CUDA "
                    f"up to {ceiling[0]}.{ceiling[1]}: update the NVIDIA driver")
    return None


@dataclass
class _Search:
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _fits(variant: Variant, gpus: Sequence[GpuArch], ceiling: tuple[int, int], search: _Search) -> str | None:
    """How the driver runs `variant` when it suits every GPU, else None (and why, in search.skipped)."""
    name = f"torch {variant.release.torch} {variant.tag}"
    if not variant.torchaudio:
        search.skipped.append(f"{name}: {variant.note}")
        return None
    how = runs_on(variant, ceiling)
    if how is None:
        search.skipped.append(f"{name}: needs a driver for CUDA {variant.cuda_text}, this one runs up to "
                              f"{ceiling[0]}.{ceiling[1]}")
        return None
    uncovered = [g for g in gpus if coverage(variant.archs, g.capability, jit=how == "native") is None]
    if uncovered:
        search.skipped.append(f"{name}: no kernels for " + ", ".join(g.label for g in uncovered))
        return None
    search.notes.extend(f"{g.label} runs PTX that CUDA compiles at first use (slow first start)"
                        for g in gpus if coverage(variant.archs, g.capability, jit=False) is None)
    return how


def _choose_cuda(facts: MachineFacts, base: str) -> TorchChoice:
    ceiling = facts.cuda_ceiling
    driver = f"NVIDIA driver {facts.driver_version or '?'}"
    if ceiling is None:
        return TorchChoice(None, None, "", problem=f"the {driver} does not say which CUDA it runs")
    blocked = _too_new_for_driver(facts.gpus, ceiling)
    if blocked:
        return TorchChoice(None, None, "", problem=blocked)
    search = _Search()
    for variant in BUILDS:
        how = _fits(variant, facts.gpus, ceiling, search)
        if how is None:
            continue
        if how != "native":
            search.notes.append(f"CUDA {variant.cuda_text} runs on this driver (CUDA {ceiling[0]}.{ceiling[1]}) by "
                                "minor-version compatibility; a newer driver lifts that")
        reason = (f"{driver} runs CUDA up to {ceiling[0]}.{ceiling[1]}; torch {variant.release.torch} "
                  f"{variant.tag} (CUDA {variant.cuda_text}) has kernels for "
                  + ", ".join(g.label for g in facts.gpus))
        return TorchChoice(variant, index_url(base, variant.tag), reason, tuple(search.skipped),
                           tuple(search.notes), label=_uses_label(variant, facts.platform))
    return TorchChoice(None, None, "", tuple(search.skipped), problem=(
        "no PyTorch build runs on this driver with kernels for every GPU: " + "; ".join(search.skipped)))


def choose_torch(facts: MachineFacts, *, force_cpu: bool = False, index_override: str | None = None,
                 index_base: str = DEFAULT_INDEX_BASE) -> TorchChoice:
    """The build for this machine (see the module docstring); `--cpu` and `--torch-index` override it."""
    if index_override:
        return _overridden(index_override, facts)
    if force_cpu:
        return TorchChoice(CPU, index_url(index_base, CPU.tag), "--cpu asks for the CPU build", source="--cpu",
                           label=_uses_label(CPU, facts.platform))
    if facts.gpus:
        return _choose_cuda(facts, index_base)
    if facts.nvidia_problem:
        return TorchChoice(None, None, "", problem=f"the NVIDIA driver cannot tell which GPUs there are "
                           f"({facts.nvidia_problem}): fix that (see `fluxops doctor gpu`), or pass --cpu")
    if facts.amd_rocm and facts.platform == "linux":
        return TorchChoice(ROCM, index_url(index_base, ROCM.tag), "an AMD GPU with the ROCm kernel driver "
                           "(/dev/kfd) and no NVIDIA GPU: the ROCm build")
    return TorchChoice(CPU, index_url(index_base, CPU.tag), "no NVIDIA GPU (and no AMD GPU with ROCm): the CPU "
                       "build", label=_uses_label(CPU, facts.platform))


def _overridden(url: str, facts: MachineFacts) -> TorchChoice:
    """`--torch-index URL`: a mirror of one of PyTorch's indexes is recognised by its last path part."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    known = next((v for v in ALL_VARIANTS if v.tag == tail), None)
    if known is not None:
        return TorchChoice(known, url, f"--torch-index names the {known.tag} index", source="--torch-index",
                           label=_uses_label(known, facts.platform))
    return TorchChoice(UNKNOWN, url, f"--torch-index {url}: torch {TORCH_2_14.torch} as that index builds it",
                       source="--torch-index", label=False,
                       notes=("the build (CUDA, CPU) is whatever that index serves; doctor reports it after",))


def variant_by_tag(tag: str | None) -> Variant | None:
    return next((v for v in ALL_VARIANTS if v.tag == tag), None)
