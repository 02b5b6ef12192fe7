"""Ask ComfyUI's own Python about its torch: version, the CUDA it was built for, whether it sees a GPU.

Importing torch takes seconds, so the answer is cached in the state dir. The cache key is what a cheap probe
(no torch import: `importlib.util.find_spec`) reports about the installation: the interpreter, and the path,
size and mtime of torch/version.py, which every torch install or upgrade rewrites. The driver version and
CUDA_VISIBLE_DEVICES join the key because `torch.cuda.is_available()` depends on them too.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fluxops.files import write_atomic

CACHE_VERSION = 2  # 2: answers carry torch.cuda.get_arch_list()
LOCATE_TIMEOUT_S = 15.0

# Both scripts take the query name as argv[1], so a stand-in interpreter can tell them apart.
_LOCATE = """
import importlib.util, json, os, sys
spec = importlib.util.find_spec("torch")
out = {"python": sys.version.split()[0], "executable": sys.executable, "torch_version_file": None}
if spec is not None and spec.submodule_search_locations:
    path = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    try:
        st = os.stat(path)
        out.update(torch_version_file=path, size=st.st_size, mtime_ns=st.st_mtime_ns)
    except OSError:
        pass
print(json.dumps(out))
"""

_QUERY = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch
    available = bool(torch.cuda.is_available())
    count = torch.cuda.device_count() if available else 0
    name = torch.cuda.get_device_name(0) if available and count else None
    archs = list(torch.cuda.get_arch_list()) if available and hasattr(torch.cuda, "get_arch_list") else []
out = {"torch": torch.__version__, "cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None),
       "cuda_available": available, "device_count": count, "device_name": name, "arch_list": archs,
       "warnings": [str(w.message).strip().splitlines()[0] for w in caught][:5]}
print(json.dumps(out))
"""


@dataclass(frozen=True)
class TorchInfo:
    """The answer, or why there is none. ``status``: ok, no_torch, crashed, timeout, no_python."""

    status: str
    python: str | None = None
    python_version: str | None = None
    torch: str | None = None
    cuda: str | None = None  # torch.version.cuda; None for a CPU-only (or ROCm) build
    hip: str | None = None
    cuda_available: bool | None = None
    device_count: int | None = None
    device_name: str | None = None
    warnings: tuple[str, ...] = ()
    arch_list: tuple[str, ...] = ()  # torch.cuda.get_arch_list(): the GPU architectures it has kernels for
    error: str | None = None
    cached: bool = False

    @property
    def cuda_tuple(self) -> tuple[int, int] | None:
        return parse_version(self.cuda)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        data["arch_list"] = list(self.arch_list)
        return data


def parse_version(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return None


def _run(python: Path, script: str, query: str, timeout: float, env: Mapping[str, str]) -> dict[str, Any]:
    """Run one script in ComfyUI's interpreter; its last stdout line is JSON. Raises on failure/timeout."""
    proc = subprocess.run(
        [str(python), "-c", script, query],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env),
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        last = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(last[-1].strip() if last else f"exit status {proc.returncode}")
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    try:
        data = json.loads(lines[-1]) if lines else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RuntimeError("it printed no answer")
    return data


class TorchCache:
    """One JSON file of answers keyed on the torch installation; a corrupt file is an empty cache."""

    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.entries: dict[str, Any] = data["entries"] if data.get("version") == CACHE_VERSION else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, answer: dict[str, Any]) -> None:
        self.entries = {k: v for k, v in self.entries.items() if not k.startswith(key.split("|", 1)[0] + "|")}
        self.entries[key] = answer
        write_atomic(self.path, json.dumps({"version": CACHE_VERSION, "entries": self.entries}, indent=1).encode())


def _info(
    status: str,
    python: Path,
    located: dict[str, Any],
    answer: dict[str, Any] | None = None,
    error: str | None = None,
    cached: bool = False,
) -> TorchInfo:
    answer = answer or {}
    return TorchInfo(
        status=status,
        python=str(python),
        python_version=located.get("python"),
        torch=answer.get("torch"),
        cuda=answer.get("cuda"),
        hip=answer.get("hip"),
        cuda_available=answer.get("cuda_available"),
        device_count=answer.get("device_count"),
        device_name=answer.get("device_name"),
        warnings=tuple(answer.get("warnings") or ()),
        arch_list=tuple(answer.get("arch_list") or ()),
        error=error,
        cached=cached,
    )


def probe_torch(
    python: Path | None,
    cache_file: Path,
    env: Mapping[str, str],
    timeout: float = 60.0,
    driver_version: str | None = None,
) -> TorchInfo:
    """ComfyUI's torch, from the cache when the installation is unchanged, else by importing it."""
    if python is None:
        return TorchInfo(status="no_python")
    if not python.exists():
        return TorchInfo(status="no_python", python=str(python), error=f"{python} does not exist")
    try:
        located = _run(python, _LOCATE, "locate", min(timeout, LOCATE_TIMEOUT_S), env)
    except subprocess.TimeoutExpired:
        return TorchInfo(status="timeout", python=str(python), error="the interpreter did not start in time")
    except (OSError, RuntimeError) as exc:
        return TorchInfo(status="crashed", python=str(python), error=f"the interpreter failed to run: {exc}")
    if not located.get("torch_version_file"):
        return _info("no_torch", python, located, error="torch is not installed in this interpreter")
    key = "|".join(
        [
            str(python),
            str(located["torch_version_file"]),
            str(located.get("size")),
            str(located.get("mtime_ns")),
            str(driver_version),
            env.get("CUDA_VISIBLE_DEVICES", "<unset>"),
        ]
    )
    cache = TorchCache(cache_file)
    answer = cache.get(key)
    if answer is not None:
        return _info("ok", python, located, answer, cached=True)
    try:
        answer = _run(python, _QUERY, "query", timeout, env)
    except subprocess.TimeoutExpired:
        return _info("timeout", python, located, error=f"importing torch took longer than {timeout:g} s")
    except (OSError, RuntimeError) as exc:
        return _info("crashed", python, located, error=str(exc))
    with contextlib.suppress(OSError):  # an unwritable state dir costs a slower next run, nothing else
        cache.put(key, answer)
    return _info("ok", python, located, answer)
