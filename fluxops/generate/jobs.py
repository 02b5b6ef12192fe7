"""Plan and execute a `generate` run: the graphs to submit (one per prompt, distinct seeds), checked against
the server's node specs before anything is sent, the context every sidecar records, and the run itself
(with the health check's verdict for `--check`). The CLI and the monthly maintain job both call `execute`."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fluxops.comfy.client import ComfyClient, is_loopback
from fluxops.errors import FluxopsError
from fluxops.generate.healthcheck import Verdict, assess
from fluxops.generate.nodespec import check_graph, parse_object_info, raise_for
from fluxops.generate.runner import Event, Job, RunContext, Runner, RunResult
from fluxops.generate.serverconn import connect, stop_if_started
from fluxops.generate.workflow import (
    DEFAULT_PRESET,
    Overrides,
    Workflow,
    build_graph,
    load_workflow,
    model_names,
    resolve_params,
)
from fluxops.models.manifest import Manifest, load_manifest
from fluxops.settings import Settings
from fluxops.units import gib

SEED_LIMIT = 2**64  # KSampler's seed range is 0..18446744073709551615
CHECK_SEED = 20240601
CHECK_PROMPT = "a white ceramic coffee mug on a light oak table, soft window light, product photograph"


@dataclass(frozen=True)
class GenerateRequest:
    preset: str = DEFAULT_PRESET
    overrides: Overrides = field(default_factory=Overrides)
    seed: int | None = None  # None: a random one (printed, so the image can be reproduced)
    count: int = 1
    workflow: Path | None = None
    check: bool = False  # the health check: assess the image after the run

    @classmethod
    def health_check(cls, overrides: Overrides, workflow: Path | None = None) -> GenerateRequest:
        """Production preset, fixed seed and prompt, one image (size overrides allowed)."""
        fixed = Overrides(prompt=CHECK_PROMPT, width=overrides.width, height=overrides.height, batch=1)
        return cls(preset=DEFAULT_PRESET, overrides=fixed, seed=CHECK_SEED, count=1, workflow=workflow, check=True)


@dataclass(frozen=True)
class Plan:
    request: GenerateRequest
    workflow: Workflow
    manifest: Manifest | None
    jobs: list[Job]

    @property
    def seeds(self) -> list[int]:
        return [job.params.seed for job in self.jobs]


def plan(request: GenerateRequest, manifest_path: Path | None) -> Plan:
    """Load the workflow and manifest, resolve every job's parameters and graph. Needs no server."""
    if request.count < 1:
        raise FluxopsError("workflow.invalid_value", f"--count {request.count}: at least 1")
    if request.seed is not None and not 0 <= request.seed < SEED_LIMIT:
        raise FluxopsError("workflow.invalid_value", f"--seed {request.seed} is outside 0..{SEED_LIMIT - 1}")
    workflow = load_workflow(request.workflow)
    manifest = load_manifest(manifest_path) if manifest_path is not None else None
    base = request.seed if request.seed is not None else secrets.randbelow(2**48)
    jobs = []
    for index in range(request.count):
        params = resolve_params(workflow, request.preset, request.overrides, (base + index) % SEED_LIMIT)
        jobs.append(Job(index=index, params=params, graph=build_graph(workflow, params, manifest)))
    return Plan(request, workflow, manifest, jobs)


def check_against_server(client: ComfyClient, plan: Plan) -> None:
    """Every class exists on the server, every value is in range, every model file is in its lists."""
    classes = sorted({node["class_type"] for job in plan.jobs for node in job.graph.values()})
    info: dict[str, Any] = {}
    for name in classes:
        info.update(client.object_info(name))  # {} for a class this server lacks
    specs = parse_object_info(info)
    problems = check_graph(plan.jobs[0].graph, specs)
    for job in plan.jobs[1:]:  # jobs differ only in their seed; check it anyway
        problems.extend(p for p in check_graph(job.graph, specs) if p.kind == "invalid_value" and "seed" in p.message)
    raise_for(problems)


def run_context(client: ComfyClient, plan: Plan, output_dir: Path, system: dict[str, Any]) -> RunContext:
    used = model_names(plan.workflow, plan.jobs[0].graph)
    models = {}
    for file_id, filename in used.items():
        entry = {"filename": filename}
        if plan.manifest is not None:
            spec = next((f for f in plan.manifest.files if f.id == file_id), None)
            if spec is not None and spec.filename == filename:
                entry["sha256"] = spec.sha256
        models[file_id] = entry
    server = {"url": client.base_url, "comfyui_version": (system.get("system") or {}).get("comfyui_version")}
    return RunContext(workflow=plan.workflow, models=models, server=server, output_dir=output_dir)


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    server: dict[str, Any]
    result: RunResult
    check: Verdict | None = None

    @property
    def ok(self) -> bool:
        return self.check is None or self.check.passed

    def to_dict(self) -> dict[str, Any]:
        data = {"seeds": self.plan.seeds, "params": self.plan.jobs[0].params.to_dict(), "server": self.server,
                **self.result.to_dict()}
        if self.check is not None:
            data["check"] = self.check.to_dict()
        return data


def execute(settings: Settings, the_plan: Plan, *, url: str | None = None, stop_after: bool = False,
            on_event: Callable[[Event], None] | None = None, on_note: Callable[[str], None] | None = None
            ) -> Outcome:
    """Reach (or start) the server, check the graphs against it, run them, and judge the health check."""
    note = on_note or (lambda _text: None)
    conn = connect(settings, url, on_note=note)
    if conn.started and not stop_after:
        note("the ComfyUI this command started stays running: `fluxops comfy stop` stops it")
    try:
        check_against_server(conn.client, the_plan)
        if the_plan.request.check:  # an identical graph would be served from the cache without running a node
            conn.client.free(unload_models=False, free_memory=True)
            note("health check: cleared ComfyUI's node cache (POST /free) so every node runs")
        ctx = run_context(conn.client, the_plan, settings.output_dir, conn.system_stats)
        local = is_loopback(urlsplit(conn.client.base_url).hostname or "")
        result = Runner(conn.client, the_plan.jobs, ctx, on_event,
                        gpu_processes=_gpu_processes if local else None).run()
    finally:
        if stop_after:
            stop_if_started(settings, conn, on_note=note)
    verdict = None
    if the_plan.request.check:
        params = the_plan.jobs[0].params
        verdict = assess(Path(result.images[0]["path"]), params.width, params.height)
    return Outcome(the_plan, ctx.server, result, verdict)


def _gpu_processes() -> list[str]:
    """Processes holding VRAM on this machine, from doctor's NVML probe, for the out-of-memory hint."""
    from fluxops.machine.gpu import probe_gpus  # doctor's NVML seam: no driver gives no devices, never an error

    def used(n: int | None) -> str:
        return gib(n) if n else "memory unknown"

    return [f"pid {p.pid} {p.name or '?'} ({used(p.used_bytes)}) on GPU {d.index}"
            for d in probe_gpus().devices for p in d.processes]
