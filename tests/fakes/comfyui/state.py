"""The fake server's state: its arguments, folders, node specs, queue, history and open WebSockets.

Route modules read and change it through `request.app[COMFY]`. Execution (POST /prompt, the worker, /history,
/view, /interrupt, /free) is added on top of this by the generate feature; the fields it needs are here.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.comfyui.faults import Faults
from tests.fakes.comfyui.folders import FolderPaths
from tests.fakes.comfyui.release import CURRENT, EXTRA_NODE_FIELDS, release_from_env

DATA = Path(__file__).resolve().parents[2] / "data" / "comfyui"
DEFAULT_VERSION = "0.3.64"

# (node class, input) -> the model folder its COMBO lists, like the real nodes.py.
MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("VAELoader", "vae_name"): "vae",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
}
VAE_BUILTINS = ["pixel_space"]


def read_version(root: Path) -> str:
    try:
        text = (root / "comfyui_version.py").read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_VERSION
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return DEFAULT_VERSION


class FakeComfy:
    def __init__(
        self,
        args: argparse.Namespace,
        argv: list[str],
        root: Path,
        base_dir: Path,
        folders: FolderPaths,
        faults: Faults,
    ):
        self.args = args
        self.argv = argv
        self.root = root
        self.base_dir = base_dir
        self.output_dir = Path(args.output_directory) if args.output_directory else base_dir / "output"
        self.temp_dir = Path(args.temp_directory) / "temp" if args.temp_directory else base_dir / "temp"
        self.folders = folders
        self.faults = faults
        self.version = read_version(root)
        self.release = release_from_env()  # which release's behaviour (release.py)
        self.newer = self.release == CURRENT
        self.log = logging.getLogger("comfyui")
        self._node_specs: dict[str, Any] = json.loads((DATA / "object_info_nodes.json").read_text("utf-8"))
        self._stats_template: dict[str, Any] = json.loads((DATA / "system_stats.json").read_text("utf-8"))
        # queue and execution state (filled by the execution routes)
        self.counter = 0
        self.queue_running: list[list[Any]] = []
        self.queue_pending: list[list[Any]] = []
        self.history: dict[str, Any] = {}
        # open WebSockets by client id (a reconnect with the same id replaces the old one)
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.ws_clients: list[str] = []  # the client id of every WebSocket opened, in order (test-only view)
        self.feature_flags: dict[str, dict[str, Any]] = {}

    # -- node specs ---------------------------------------------------------------------------------------
    def node_specs(self) -> dict[str, Any]:
        """The recorded node specs with each model COMBO filled from the files present now."""
        specs = copy.deepcopy(self._node_specs)
        for (node, name), folder in MODEL_INPUTS.items():
            required = specs.get(node, {}).get("input", {}).get("required", {})
            if name in required:
                options = self.folders.files(folder) + (VAE_BUILTINS if node == "VAELoader" else [])
                required[name][0] = options
        if self.newer:
            for info in specs.values():
                info.update(EXTRA_NODE_FIELDS)
        return specs

    # -- system stats ---------------------------------------------------------------------------------
    def system_stats(self) -> dict[str, Any]:
        import psutil

        mem = psutil.virtual_memory()
        stats = copy.deepcopy(self._stats_template)
        system = stats["system"]
        system.update(
            ram_total=mem.total,
            ram_free=mem.available,
            comfyui_version=self.version,
            python_version=sys.version,
            argv=list(self.argv),
        )
        if self.args.cpu:
            device = {
                "name": "cpu",
                "type": "cpu",
                "index": None,
                "vram_total": mem.total,
                "vram_free": mem.available,
                "torch_vram_total": mem.total,
                "torch_vram_free": mem.available,
            }
        else:
            device = {
                "name": "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync",
                "type": "cuda",
                "index": 0,
                "vram_total": self.faults.vram_total,
                "vram_free": self.faults.vram_free,
                "torch_vram_total": 0,
                "torch_vram_free": 0,
            }
        stats["devices"] = [device]
        if self.newer and not self.args.cpu:
            stats["devices"].append({**device, "name": "cuda:1 NVIDIA H100 80GB HBM3 : cudaMallocAsync", "index": 1})
        if self.faults.no_argv:
            del system["argv"]
        return stats

    # -- queue and sockets ----------------------------------------------------------------------------
    def queue_remaining(self) -> int:
        return len(self.queue_running) + len(self.queue_pending)

    def status_message(self, sid: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}
        if sid is not None:
            data["sid"] = sid
        return {"type": "status", "data": data}

    async def send(self, sid: str | None, message: dict[str, Any]) -> None:
        """Send a JSON message to one client (no-op for None or a closed socket)."""
        ws = self.sockets.get(sid) if sid else None
        if ws is not None and not ws.closed:
            await ws.send_str(json.dumps(message))

    async def send_bytes(self, sid: str | None, data: bytes) -> None:
        ws = self.sockets.get(sid) if sid else None
        if ws is not None and not ws.closed:
            await ws.send_bytes(data)

    async def broadcast(self, message: dict[str, Any]) -> None:
        for sid in list(self.sockets):
            await self.send(sid, message)


COMFY = web.AppKey("comfy", FakeComfy)
