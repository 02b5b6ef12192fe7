"""ComfyUI's Python side: the interpreter that creates the venv, the venv itself, and pip runs in it.

PYTHONPATH and PYTHONHOME are not passed on: packages on the caller's path would look installed to the venv's
pip. After torch is in, `venv/fluxops-constraints.txt` pins torch, torchvision and torchaudio, and the venv's
own pip config (`venv/pip.conf`, which pip reads for every install in that venv:
https://pip.pypa.io/en/stable/topics/configuration/#location) names it, so neither ComfyUI's requirements nor a
custom node's can move torch to another release.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from fluxops.errors import FluxopsError
from fluxops.files import write_atomic
from fluxops.installer.proc import OutputSink, run_quiet, run_streamed

CONSTRAINTS_NAME = "fluxops-constraints.txt"
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")
PIP = ("-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--progress-bar", "off")

_PROBE = """
import importlib.util, json, sys
print(json.dumps({"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable,
                  "venv": all(importlib.util.find_spec(m) is not None for m in ("venv", "ensurepip")),
                  "pip": importlib.util.find_spec("pip") is not None}))
"""
_VERSIONS = """
import importlib.metadata as md, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = md.version(name)
    except md.PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""


@dataclass(frozen=True)
class PythonInfo:
    path: Path
    version: str
    executable: str
    can_make_venv: bool
    has_pip: bool


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def probe_python(python: Path, env: Mapping[str, str]) -> PythonInfo | None:
    """What an interpreter is, or None when it does not run."""
    try:
        done = run_quiet([str(python), "-c", _PROBE], child_env(env), timeout=30)
        data = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None
    if not isinstance(data, dict):
        return None
    return PythonInfo(python, str(data["version"]), str(data["executable"]), bool(data["venv"]), bool(data["pip"]))


def check_supported(info: PythonInfo, requirements: Sequence[tuple[str, str]]) -> None:
    """Refuse a Python that ComfyUI or the torch release has no support for; requirements: (specifier, who)."""
    for spec, who in requirements:
        try:
            allowed = SpecifierSet(spec)
        except InvalidSpecifier as exc:
            raise FluxopsError("manifest.invalid", f"python requirement {spec!r} of {who} is not valid") from exc
        if info.version not in allowed:
            raise FluxopsError("install.python_unsupported",
                               f"{info.path} is Python {info.version}; {who} needs Python {spec}")


def create_venv(creator: PythonInfo, venv_dir: Path, env: Mapping[str, str], on_output: OutputSink | None) -> None:
    if not creator.can_make_venv:
        raise FluxopsError("install.venv_failed", f"{creator.path} cannot create a venv (its venv or ensurepip "
                           "module is missing)", hint="install your distribution's venv package (Debian/Ubuntu: "
                           "`sudo apt-get install python3-venv`), or pass --python PATH")
    done = run_streamed([str(creator.path), "-m", "venv", "--clear", str(venv_dir)], child_env(env), on_output,
                        what=f"{venv_dir} was being created")
    if done.returncode != 0:
        raise FluxopsError("install.venv_failed", f"creating {venv_dir} failed: {done.last_lines or done.returncode}")


def installed_versions(python: Path, env: Mapping[str, str], names: Sequence[str] = TORCH_PACKAGES
                       ) -> dict[str, str | None]:
    """Installed distribution versions, read from their metadata (no import of torch)."""
    done = run_quiet([str(python), "-c", _VERSIONS, *names], child_env(env), timeout=60)
    if done.returncode != 0:
        return dict.fromkeys(names)
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return dict.fromkeys(names)
    return {name: data.get(name) for name in names}


def pip_install(python: Path, args: Sequence[str], env: Mapping[str, str], on_output: OutputSink | None,
                what: str, cwd: Path | None = None) -> None:
    done = run_streamed([str(python), *PIP, *args], child_env(env), on_output, cwd=cwd,
                        what=f"pip was installing {what}")
    if done.returncode != 0:
        killed = done.returncode < 0
        how = "was killed while installing" if killed else "failed to install"
        tail = f":\n{done.last_lines}" if done.last_lines and not killed else ""
        raise FluxopsError("install.pip_failed", f"pip {how} {what} (exit status {done.returncode}){tail}")


def pip_freeze(python: Path, env: Mapping[str, str]) -> list[str]:
    done = run_quiet([str(python), "-m", "pip", "freeze", "--all", "--disable-pip-version-check"], child_env(env),
                     timeout=120)
    return [line for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def pin_torch(venv_dir: Path, pins: Sequence[str], why: str) -> Path:
    """Write the constraints file and name it in the venv's own pip config; returns the constraints file."""
    constraints = venv_dir / CONSTRAINTS_NAME
    text = "".join([f"# Written by `fluxops comfy install`: {why}.\n",
                    "# Every pip install in this venv reads it (see pip.conf beside it), so no requirement can\n",
                    "# replace this torch. `fluxops comfy install --upgrade` rewrites it.\n",
                    *(f"{pin}\n" for pin in pins)])
    write_atomic(constraints, text.encode())
    config_path = venv_dir / ("pip.ini" if os.name == "nt" else "pip.conf")
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read(config_path, encoding="utf-8")
    except configparser.Error:
        config = configparser.ConfigParser(interpolation=None)
    if not config.has_section("global"):
        config.add_section("global")
    named = config.get("global", "constraint", fallback="").split()
    if str(constraints) not in named:
        config.set("global", "constraint", " ".join([*named, str(constraints)]))
        buffer = io.StringIO()
        config.write(buffer)
        write_atomic(config_path, buffer.getvalue().encode())
    return constraints
