"""Running `fluxops comfy install` as a user would, against the local git repository, wheel indexes and NVML.

Each environment sees only: its own HOME, config and state dirs; the fake NVML with a named scenario; the local
indexes (PyTorch's as FLUXOPS_TORCH_INDEX_BASE, PyPI's as pip's index); a manifest whose [comfyui] table pins a
tag of the local repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psutil
import tomlkit

from fluxops.settings import packaged_manifest
from tests.fakes.comfyui_repo import ComfyRepo
from tests.fakes.nvml_seam import nvml_env
from tests.fakes.pyindex import IndexServer
from tests.helpers import run_fluxops, spawn_fluxops
from tests.install.conftest import pip_env

_DROP = ("FLUXOPS_", "HF_", "HUGGING", "PIP_")


def write_manifest(path: Path, repo: ComfyRepo, tag: str) -> Path:
    """The packaged manifest with its [comfyui] table pointing at `tag` of the local repository."""
    document = tomlkit.parse(packaged_manifest().read_text(encoding="utf-8"))
    table = tomlkit.table()
    table.update({"url": repo.url, "tag": tag, "commit": repo.commits[tag]})
    document["comfyui"] = table
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    return path


def install_env(root: Path, server: IndexServer, repo: ComfyRepo, scenario: str, tag: str = "v0.0.1"
                ) -> dict[str, str]:
    home = root / "home"
    (root / "work").mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP) and k != "CUDA_VISIBLE_DEVICES"}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_STATE_HOME": str(home / ".local/state"),
        "FLUXOPS_STATE_DIR": str(root / "state"), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1",
        "COLUMNS": "200", "FLUXOPS_TORCH_INDEX_BASE": server.whl,
        "FLUXOPS_MANIFEST": str(write_manifest(root / f"manifest-{tag}.toml", repo, tag)),
    })
    env.update(pip_env(server, root))
    env.update(nvml_env(scenario))
    return env


def point_at(env: dict[str, str], server: IndexServer, root: Path) -> dict[str, str]:
    """The same environment with pip and the torch base on another (running) index server."""
    return {**env, **pip_env(server, root), "FLUXOPS_TORCH_INDEX_BASE": server.whl}


def run_cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return run_fluxops(*args, env=env, timeout=timeout, cwd=Path(env["HOME"]).parent / "work")


def start_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return spawn_fluxops(*args, env=env, cwd=Path(env["HOME"]).parent / "work")


def signal_tree(proc: subprocess.Popen[str], sig: int) -> None:
    """`sig` to fluxops and every process below it (pip), as a terminal sends Ctrl-C to its foreground group."""
    parent = psutil.Process(proc.pid)
    for process in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(sig)


def data(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc = json.loads(done.stdout)
    assert doc["schema"] == "fluxops/1", doc
    return doc.get("data") or doc


def lock(target: Path) -> dict[str, Any]:
    return json.loads((target / "fluxops-lock.json").read_text(encoding="utf-8"))


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


__all__ = ["data", "git_out", "install_env", "lock", "point_at", "run_cli", "signal_tree", "start_cli",
           "write_manifest"]
