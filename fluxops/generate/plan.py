"""What a `generate` run will submit, decided before any server is asked: the request from the command line,
and its plan, one job per prompt (distinct seeds), each with its parameters and graph.

A `Job` is one prompt of the plan; the runner (`fluxops.generate.runner`) records on it what happens to that
prompt on the server (queued, started, finished, the images saved).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.generate.corenodes import core_specs
from fluxops.generate.nodespec import ProblemKind, check_graph, raise_for
from fluxops.generate.workflow import (
    DEFAULT_PRESET,
    Overrides,
    Params,
    Workflow,
    build_graph,
    load_workflow,
    resolve_params,
)
from fluxops.models.manifest import Manifest, load_manifest

SEED_LIMIT = 2**64  # KSampler's seed range is 0..18446744073709551615
CHECK_SEED = 20240601
CHECK_PROMPT = "a white ceramic coffee mug on a light oak table, soft window light, product photograph"
# A deliberately fast guess at FLUX.1 on the fastest GPUs (an H100 takes about twice this per step at
# 1024x1024): a run estimated at more than a day with it is surely more than a day, so only such a run
# asks for --yes.
FAST_SECONDS_PER_STEP_PER_MEGAPIXEL = 0.05
DAY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class GenerateRequest:
    preset: str = DEFAULT_PRESET
    overrides: Overrides = field(default_factory=Overrides)
    seed: int | None = None  # None: a random one (printed, so the image can be reproduced)
    count: int = 1
    workflow: Path | None = None
    check: bool = False  # the health check: assess the image after the run
    yes: bool = False  # --yes: a run estimated at more than a day of work goes ahead

    @classmethod
    def health_check(cls, overrides: Overrides, workflow: Path | None = None) -> GenerateRequest:
        """Production preset, fixed seed and prompt, one image (size overrides allowed)."""
        fixed = Overrides(prompt=CHECK_PROMPT, width=overrides.width, height=overrides.height, batch=1)
        return cls(preset=DEFAULT_PRESET, overrides=fixed, seed=CHECK_SEED, count=1, workflow=workflow, check=True)


@dataclass
class Job:
    """One prompt of the plan, and what the runner learns about it while it runs."""

    index: int
    params: Params
    graph: dict[str, Any]
    # a lowercase UUID, the only form current ComfyUI releases accept as a client-chosen prompt_id
    prompt_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    number: int | float | None = None  # the server's queue number
    queued_at: float | None = None  # epoch seconds
    started_at: float | None = None
    finished_at: float | None = None
    step_times: list[float] = field(default_factory=list)  # monotonic, one per sampler step
    outputs: dict[str, Any] = field(default_factory=dict)
    saved: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    cached: bool = False  # ComfyUI answered it from its node cache: its Save Image node did not run
    missing_since: float | None = None  # monotonic; set while the prompt is neither queued nor finished

    def seconds_per_step(self) -> float | None:
        times = self.step_times
        return round((times[-1] - times[0]) / (len(times) - 1), 4) if len(times) >= 2 else None


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
    first = resolve_params(workflow, request.preset, request.overrides, base)
    refuse_impossible_values(build_graph(workflow, first, manifest))
    if not request.yes:
        refuse_more_than_a_day(first, request.count)
    jobs = []
    for index in range(request.count):
        params = resolve_params(workflow, request.preset, request.overrides, (base + index) % SEED_LIMIT)
        jobs.append(Job(index=index, params=params, graph=build_graph(workflow, params, manifest)))
    return Plan(request, workflow, manifest, jobs)


def refuse_impossible_values(graph: dict[str, Any]) -> None:
    """Values outside the core nodes' ranges (or not numbers at all), from the specs fluxops ships."""
    raise_for([p for p in check_graph(graph, core_specs()) if p.kind is ProblemKind.INVALID_VALUE])


def estimated_seconds(params: Params, count: int) -> float:
    megapixels = params.width * params.height / 1e6
    return count * params.batch * params.steps * megapixels * FAST_SECONDS_PER_STEP_PER_MEGAPIXEL


def refuse_more_than_a_day(params: Params, count: int) -> None:
    seconds = estimated_seconds(params, count)
    if seconds > DAY_SECONDS:
        raise FluxopsError("generate.needs_yes", f"--count {count} x --batch {params.batch} at {params.steps} steps "
                           f"and {params.width}x{params.height} is at least {seconds / DAY_SECONDS:.1f} days of "
                           "work even on the fastest GPU")
