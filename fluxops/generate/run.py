"""Execute a `generate` plan (`fluxops.generate.plan`): reach (or start) the server, check every graph against
its node specs before anything is sent, gather the context every sidecar records, run the jobs, and judge the
health check's image for `--check`. The CLI and the monthly maintain job both call `execute`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fluxops.comfy.client import ComfyClient, is_loopback
from fluxops.generate.healthcheck import Verdict, assess
from fluxops.generate.imagefiles import ensure_writable
from fluxops.generate.nodespec import ProblemKind, check_graph, parse_object_info, raise_for
from fluxops.generate.plan import Plan
from fluxops.generate.provenance import model_records
from fluxops.generate.runner import Event, RunContext, Runner, RunResult
from fluxops.generate.serverconn import Connection, connect, stop_if_started
from fluxops.settings import Settings
from fluxops.units import gib


def check_against_server(client: ComfyClient, plan: Plan) -> None:
    """Every class exists on the server, every value is in range, every model file is in its lists."""
    classes = sorted({node["class_type"] for job in plan.jobs for node in job.graph.values()})
    info: dict[str, Any] = {}
    for name in classes:
        info.update(client.object_info(name))  # {} for a class this server lacks
    specs = parse_object_info(info)
    problems = check_graph(plan.jobs[0].graph, specs)
    sampler, seed = plan.workflow.roles["sampler"], plan.workflow.seed_input
    for job in plan.jobs[1:]:  # jobs differ only in their seed; check it anyway
        problems.extend(p for p in check_graph(job.graph, specs)
                        if p.kind is ProblemKind.INVALID_VALUE and p.node_id == sampler and p.input == seed)
    raise_for(problems)


def run_context(settings: Settings, plan: Plan, conn: Connection) -> RunContext:
    system = conn.system_stats
    server = {"url": conn.client.base_url,
              "comfyui_version": (system.get("system") or {}).get("comfyui_version")}
    argv = (system.get("system") or {}).get("argv")
    return RunContext(workflow=plan.workflow, models=model_records(settings, plan, conn), server=server,
                      output_dir=settings.output_dir,
                      server_argv=tuple(str(a) for a in argv) if isinstance(argv, list) else ())


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
    ensure_writable(settings.output_dir)
    conn = connect(settings, url, on_note=note)
    if conn.started and not stop_after:
        note("the ComfyUI this command started stays running: `fluxops comfy stop` stops it")
    try:
        check_against_server(conn.client, the_plan)
        if the_plan.request.check:  # an identical graph would be served from the cache without running a node
            conn.client.free(unload_models=False, free_memory=True)
            note("health check: cleared ComfyUI's node cache (POST /free) so every node runs")
        ctx = run_context(settings, the_plan, conn)
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
