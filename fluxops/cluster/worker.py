"""The worker of `generate --cluster`: one Ray actor per GPU (the dispatcher makes it one with `num_gpus=1`), that
starts and owns its own ComfyUI (`fluxops.cluster.ownserver`) and runs one job at a time through single-box
generate's `Runner`. The image bytes and their sidecars travel back in the return value (Ray's object store);
the driver writes them. A worker never raises for a job: every outcome is a dict the driver reads.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fluxops.comfy.client import ComfyClient
from fluxops.comfy.state import ServerState
from fluxops.errors import FluxopsError
from fluxops.generate.nodespec import NodeSpec, check_graph, parse_object_info, raise_for
from fluxops.generate.plan import GenerateRequest, Job, Plan
from fluxops.generate.provenance import model_records
from fluxops.generate.runner import RunContext, Runner
from fluxops.generate.serverconn import Connection
from fluxops.generate.workflow import Params, Workflow
from fluxops.models.manifest import Manifest
from fluxops.settings import Settings

START_TIMEOUT = 120.0
PORT_TRIES = 3
# A job that failed with one of these may succeed on another server: the server died or stopped answering.
# Model, validation and node errors (rejected, out of memory, execution failed, ...) would fail again anywhere.
RETRYABLE = {"generate.server_gone", "generate.interrupted", "comfy.unreachable", "comfy.timeout",
             "comfy.bad_response"}


class GpuWorker:
    def __init__(self, name: str, settings: Settings, extra_args: Sequence[str], workflow: Workflow,
                 manifest: Manifest | None):
        import ray

        from fluxops.cluster.ownserver import OwnServer

        self.name = name
        self.node_id = str(ray.get_runtime_context().get_node_id())
        self.settings = settings
        self.workflow = workflow
        self.manifest = manifest
        self.folder = Path(tempfile.mkdtemp(prefix="fluxops-worker-"))
        self.server = OwnServer(settings, extra_args, self.folder, _memory_flags(settings, extra_args))
        self.client: ComfyClient | None = None
        self.stats: dict[str, Any] = {}
        self.specs: dict[str, NodeSpec] = {}
        self.models: dict[str, Any] | None = None

    def ready(self) -> dict[str, Any]:
        """Start this worker's ComfyUI and wait until it answers; {"ok", "url", "node_id", "error"}."""
        try:
            state = self._start_server()
            self.client = ComfyClient(state.url)
            self.stats = self.client.system_stats()
        except FluxopsError as exc:
            return {"ok": False, "node_id": self.node_id, "error": exc.message, "code": exc.code}
        return {"ok": True, "node_id": self.node_id, "url": state.url, "pid": state.pid,
                "comfyui_version": (self.stats.get("system") or {}).get("comfyui_version")}

    def _start_server(self) -> ServerState:
        """The free port is picked before ComfyUI binds it, so another worker on the node may take it first:
        then the start is tried again on another port (a ComfyUI that fails for any other reason is not)."""
        for attempt in range(1, PORT_TRIES + 1):
            try:
                return self.server.start(START_TIMEOUT, note=lambda _text: None)
            except FluxopsError as exc:
                if exc.code != "comfy.port_in_use" or attempt == PORT_TRIES:
                    raise
        raise AssertionError("unreachable")

    def run_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Run one job: {"key", "prompt_id", "graph", "params", "attempt"} -> {"status", "images", ...}."""
        began = time.time()
        try:
            images, seconds = self._run(spec)
        except FluxopsError as exc:
            dead = not self.server.alive()
            return {"status": "failed", "code": exc.code, "error": exc.message, "server_dead": dead,
                    "retryable": dead or exc.code in RETRYABLE, "began": began, "ended": time.time()}
        return {"status": "done", "images": images, "seconds": seconds, "began": began, "ended": time.time()}

    def _run(self, spec: dict[str, Any]) -> tuple[list[dict[str, Any]], float | None]:
        assert self.client is not None
        params: Params = spec["params"]
        job = Job(index=0, params=params, graph=spec["graph"], prompt_id=spec["prompt_id"])
        self._check(job.graph)
        handoff = self.folder / "handoff" / spec["key"]
        runner = Runner(ComfyClient(self.client.base_url), [job], self._context(job, handoff))
        if not (spec["attempt"] > 1 and runner.adopt_finished(job)):  # on a retry, first ask if it ran
            runner.run()
        images = [_taken(saved) for saved in job.saved]
        shutil.rmtree(handoff, ignore_errors=True)
        seconds = round(job.finished_at - job.started_at, 3) if job.started_at and job.finished_at else None
        return images, seconds

    def _check(self, graph: dict[str, Any]) -> None:
        """Every class on this server, every value in range, every model in its lists, before sending."""
        assert self.client is not None
        missing = sorted({node["class_type"] for node in graph.values()} - set(self.specs))
        info: dict[str, Any] = {}
        for name in missing:
            info.update(self.client.object_info(name))
        self.specs.update(parse_object_info(info))
        raise_for(check_graph(graph, self.specs))

    def _context(self, job: Job, output: Path) -> RunContext:
        assert self.client is not None
        if self.models is None:
            plan = Plan(GenerateRequest(), self.workflow, self.manifest, [job])
            self.models = model_records(self.settings, plan, Connection(self.client, self.stats, started=True))
        server = {"url": self.client.base_url,
                  "comfyui_version": (self.stats.get("system") or {}).get("comfyui_version")}
        argv = (self.stats.get("system") or {}).get("argv")
        return RunContext(workflow=self.workflow, models=self.models, server=server, output_dir=output,
                          server_argv=tuple(str(a) for a in argv) if isinstance(argv, list) else ())

    def interrupt(self) -> None:
        """Ctrl-C on the driver: drop what is queued on this worker's server and interrupt what runs."""
        if self.client is None or not self.server.alive():
            return
        try:
            self.client.request("POST", "/queue", json={"clear": True})
            self.client.interrupt()
        except FluxopsError:
            pass

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def server_pid(self) -> int | None:
        return self.server.proc.pid if self.server.proc is not None else None


def _taken(saved: dict[str, Any]) -> dict[str, Any]:
    """An image the Runner saved into the hand-off folder, as bytes and sidecar for the driver."""
    path, sidecar = Path(saved["path"]), Path(saved["sidecar"])
    data, meta = path.read_bytes(), json.loads(sidecar.read_text(encoding="utf-8"))
    meta.pop("image", None)
    return {"stem": path.stem, "data": data, "sidecar": meta}


def _memory_flags(settings: Settings, extra_args: Sequence[str]) -> list[str]:
    """`comfy start`'s VRAM-budget flags for the GPU Ray gave this worker (CUDA_VISIBLE_DEVICES)."""
    from fluxops.comfy.memory import budget_memory_flags

    try:
        return budget_memory_flags(settings, extra_args)
    except (FluxopsError, OSError):
        return []
