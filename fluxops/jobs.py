"""Plan a `generate` run: the graphs to submit (one per image prompt, distinct seeds), checked against the
server's node specs before anything is sent, and the context every sidecar records."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxops.comfy.client import ComfyClient
from fluxops.errors import FluxopsError
from fluxops.generate import Job, RunContext
from fluxops.manifest import Manifest, load_manifest
from fluxops.nodespec import check_graph, parse_object_info, raise_for
from fluxops.workflow import (
    DEFAULT_PRESET,
    Overrides,
    Workflow,
    build_graph,
    load_workflow,
    model_names,
    resolve_params,
)

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

    @classmethod
    def health_check(cls, overrides: Overrides, workflow: Path | None = None) -> GenerateRequest:
        """Production preset, fixed seed and prompt, one image (size overrides allowed)."""
        fixed = Overrides(prompt=CHECK_PROMPT, width=overrides.width, height=overrides.height, batch=1)
        return cls(preset=DEFAULT_PRESET, overrides=fixed, seed=CHECK_SEED, count=1, workflow=workflow)


@dataclass(frozen=True)
class Plan:
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
    return Plan(workflow, manifest, jobs)


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
