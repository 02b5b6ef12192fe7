"""A local stand-in for PyTorch's wheel indexes and for PyPI: small wheels the tests build, in PEP 503 indexes
served over HTTP on 127.0.0.1.

`build_indexes(root)` writes one index per torch build of fluxops's torch table (`<root>/whl/<tag>/`, e.g.
cu130, cu126, cu128, cpu, rocm7.14, and cu132 without torchaudio, as the real cu132 index is) and a "PyPI"
(`<root>/pypi/`) with the unlabelled default torch (CUDA 13.2, as on PyPI), a newer torch, and the small
packages the fake ComfyUI's requirements.txt names. Each fake torch answers like the build it stands for:
`torch.__version__` with its label, `torch.version.cuda`/`hip`, `torch.cuda.get_arch_list()`, and
`torch.cuda.is_available()` from the fake NVML scenario (FAKE_NVML_SCENARIO) and the driver's CUDA ceiling, so
doctor's torch probe reads what a real install would show. Wheels are written with the `wheel` package.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from wheel.wheelfile import WheelFile

from fluxops.machine.torchbuild import ALL_VARIANTS, Variant

WHEEL_META = "Wheel-Version: 1.0\nGenerator: fluxops-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"

TORCH_INIT = '''"""A stand-in torch written by the fluxops test suite; it answers like the build it names."""
from torch import cuda, version

__version__ = version.__version__
'''
TORCH_VERSION = '''__version__ = {version!r}
cuda = {cuda!r}
hip = {hip!r}
git_version = "fluxops-test-fake"
'''
TORCH_CUDA = '''"""What the real torch.cuda answers, worked out from the fake NVML scenario and this build's CUDA."""
import json
import os
import warnings

BUILT_CUDA = {cuda!r}
ARCH_LIST = {archs!r}


def _devices():
    path = os.environ.get("FAKE_NVML_SCENARIO")
    if BUILT_CUDA is None or not path:
        return []
    with open(path, encoding="utf-8") as fh:
        scenario = json.load(fh)
    code = scenario.get("cuda_driver_version")
    if scenario.get("init_error") or not code:
        return []
    built, ceiling = tuple(BUILT_CUDA), (code // 1000, code % 1000 // 10)
    if built > ceiling and built[0] != ceiling[0]:
        return []  # a CUDA 13 build on a CUDA 12 driver does not start CUDA at all
    return scenario.get("devices", [])


def is_available():
    return bool(_devices())


def device_count():
    return len(_devices())


def get_arch_list():
    return list(ARCH_LIST) if is_available() else []


def get_device_capability(index=0):
    return tuple(_devices()[index].get("compute_capability", (8, 6)))


def get_device_name(index=0):
    device = _devices()[index]
    major, minor = get_device_capability(index)
    kernels = [int(a[3:]) for a in ARCH_LIST if a.startswith("sm_")]
    if not any(k // 10 == major and k % 10 <= minor for k in kernels):
        warnings.warn(f"{{device['name']}} with CUDA capability sm_{{major}}{{minor}} is not compatible with the "
                      f"current PyTorch installation.\\nThe current PyTorch install supports CUDA capabilities "
                      f"{{' '.join(ARCH_LIST)}}.", stacklevel=2)
    return device["name"]
'''


@dataclass(frozen=True)
class Dist:
    name: str  # the distribution name as pip sees it
    version: str
    files: dict[str, str]  # path in the wheel -> text
    requires: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{re.sub(r'[-.]+', '_', self.name)}-{self.version}-py3-none-any.whl"


def write_wheel(dist: Dist, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / dist.filename
    info = f"{re.sub(r'[-.]+', '_', dist.name)}-{dist.version}.dist-info"
    metadata = "".join([f"Metadata-Version: 2.1\nName: {dist.name}\nVersion: {dist.version}\n",
                        *(f"Requires-Dist: {r}\n" for r in dist.requires)])
    with WheelFile(str(path), "w") as wheel:
        for name, text in dist.files.items():
            wheel.writestr(name, text)
        wheel.writestr(f"{info}/METADATA", metadata)
        wheel.writestr(f"{info}/WHEEL", WHEEL_META)
    return path


def torch_dists(version: str, vision: str, audio: str, cuda: tuple[int, int] | None, archs: tuple[str, ...],
                hip: str | None = None, with_audio: bool = True) -> list[Dist]:
    cuda_text = f"{cuda[0]}.{cuda[1]}" if cuda else None
    base = version.split("+", 1)[0]
    dists = [
        Dist("torch", version, {
            "torch/__init__.py": TORCH_INIT,
            "torch/version.py": TORCH_VERSION.format(version=version, cuda=cuda_text, hip=hip),
            "torch/cuda/__init__.py": TORCH_CUDA.format(cuda=list(cuda) if cuda else None, archs=list(archs)),
        }),
        Dist("torchvision", vision, {"torchvision/__init__.py": f"__version__ = {vision!r}\n"},
             requires=(f"torch=={base}",)),
    ]
    if with_audio:
        dists.append(Dist("torchaudio", audio, {"torchaudio/__init__.py": f"__version__ = {audio!r}\n"},
                          requires=("torch>=2.11",)))
    return dists


def variant_dists(variant: Variant) -> list[Dist]:
    release, label = variant.release, f"+{variant.tag}"
    hip = "7.14.0" if variant.kind == "rocm" else None
    return torch_dists(release.torch + label, release.torchvision + label, release.torchaudio + label,
                       variant.cuda, variant.archs, hip, with_audio=variant.torchaudio)


def _module(name: str, version: str, requires: tuple[str, ...] = ()) -> Dist:
    return Dist(name, version, {f"{re.sub(r'[-.]+', '_', name)}/__init__.py": f"__version__ = {version!r}\n"},
                requires)


# What the fake ComfyUI's requirements.txt names, as the "PyPI" index serves it.
REQUIREMENTS_TXT = "comfyui-frontend-package==1.27.10\ntorch\ntorchsde\ntorchvision\ntorchaudio\n"
PYPI_EXTRAS = (
    _module("comfyui-frontend-package", "1.27.10"),
    _module("torchsde", "0.2.6", ("torch>=1.6.0",)),
    _module("fluxops-test-audio-node", "1.0.0", ("torchaudio>=2.12",)),  # a custom node that wants a newer one
)
CU132_ARCHS = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120")


def pypi_dists() -> list[Dist]:
    """PyPI's default torch is the unlabelled CUDA 13.2 build; a newer release tempts any resolver."""
    return [*torch_dists("2.14.1", "0.29.1", "2.11.0", (13, 2), CU132_ARCHS),
            *torch_dists("2.15.0", "0.30.0", "2.12.0", (13, 2), CU132_ARCHS), *PYPI_EXTRAS]


def _project(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def write_index(index_dir: Path, dists: list[Dist], files_dir: Path, files_url: str) -> None:
    """A PEP 503 simple index: <index_dir>/<project>/index.html linking each wheel with its sha256."""
    by_project: dict[str, list[Path]] = {}
    for dist in dists:
        wheel = write_wheel(dist, files_dir)
        by_project.setdefault(_project(dist.name), []).append(wheel)
    for project, wheels in by_project.items():
        links = []
        for wheel in wheels:
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            href = f"{files_url}/{urllib.parse.quote(wheel.name)}#sha256={digest}"
            links.append(f'<a href="{html.escape(href)}">{html.escape(wheel.name)}</a><br/>')
        (index_dir / project).mkdir(parents=True, exist_ok=True)
        (index_dir / project / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n", encoding="utf-8")
    (index_dir / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(
        f'<a href="{p}/">{p}</a><br/>' for p in sorted(by_project)) + "\n</body></html>\n", encoding="utf-8")


def build_indexes(root: Path) -> Path:
    """Every variant index under <root>/whl/<tag>/ and the PyPI stand-in under <root>/pypi/; returns root."""
    for variant in ALL_VARIANTS:
        if variant.kind != "unknown":
            write_index(root / "whl" / variant.tag, variant_dists(variant), root / "files" / variant.tag,
                        f"/files/{variant.tag}")
    write_index(root / "pypi", pypi_dists(), root / "files" / "pypi", "/files/pypi")
    return root


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-download (the point of some tests) is not an error here


@dataclass
class IndexServer:
    """Serves the index tree on 127.0.0.1. `hold(fragment)` makes the next request whose path contains it wait
    (until `release()`, at most `hold_s`) after setting `held`, so a test can act while pip is mid-download."""

    root: Path
    hold_s: float = 60.0
    requests: list[str] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)
    _hold: str | None = None

    def __post_init__(self) -> None:
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(outer.root), **kwargs)

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                if outer._hold and outer._hold in self.path:
                    outer._hold = None
                    outer.held.set()
                    outer._release.wait(outer.hold_s)
                super().do_GET()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def whl(self) -> str:
        return f"{self.url}/whl"

    @property
    def pypi(self) -> str:
        return f"{self.url}/pypi"

    def hold(self, fragment: str) -> None:
        self.held.clear()
        self._release.clear()
        self._hold = fragment

    def release(self) -> None:
        self._release.set()

    def __enter__(self) -> IndexServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
