"""`fluxops generate --cluster`: the prompts to jobs, the run on every GPU of the Ray cluster, its live board
(jobs done/failed/queued, images per minute, one line per worker) and the summary or the one JSON document."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fluxops.console import Output
from fluxops.errors import ExitCode, FluxopsError

if TYPE_CHECKING:
    from fluxops.cluster.dispatch import ClusterResult, Progress
    from fluxops.generate.workflow import Overrides
    from fluxops.settings import Settings


@dataclass(frozen=True)
class ClusterArgs:
    ray_address: str | None
    prompts: Path | None
    comfy_args: Sequence[str]
    max_retries: int
    yes: bool = False
    start_timeout: float = 600.0


def refuse_single_box_options(check: bool, url: str | None, stop_after: bool) -> None:
    for given, name in ((check, "--check"), (url is not None, "--url"), (stop_after, "--stop-after")):
        if given:
            raise FluxopsError("cluster.bad_option", f"{name} does not go with --cluster: every worker starts and "
                               "stops its own ComfyUI")


def run_cluster(out: Output, settings: Settings, overrides: Overrides, preset: str, seed: int | None, count: int,
                workflow: Path | None, args: ClusterArgs) -> None:
    from fluxops.cluster import runtime
    from fluxops.cluster.dispatch import generate_on_cluster
    from fluxops.cluster.workload import Entry, read_prompts
    from fluxops.comfy.command import split_comfy_args

    runtime.import_ray()  # one line naming the extra, before anything else, when Ray is missing
    extra = split_comfy_args(args.comfy_args)
    entries = (read_prompts(args.prompts, count, overrides, preset) if args.prompts is not None
               else [Entry(0, overrides, preset, seed, count)])
    address = runtime.resolve_address(args.ray_address, os.environ)
    out.note(f"Ray: {'a local Ray for this command' if address == runtime.LOCAL else address}")
    with out.live_lines() as show:
        result = generate_on_cluster(settings, address, entries, workflow, extra, args.max_retries,
                                     on_progress=_board(out, show), yes=args.yes,
                                     start_timeout=args.start_timeout)
    out.emit(result.to_dict(), ok=result.ok)
    _summary(out, result)
    if not result.ok:
        error = FluxopsError("cluster.jobs_failed", f"{result.failed} of {result.totals()['jobs']} jobs failed")
        out.error(error)  # stderr only: the JSON document was printed above
        raise typer.Exit(ExitCode.FAILURE)


def _board(out: Output, show: Callable[[Sequence[str]], None]) -> Callable[[Progress], None]:
    said: dict[str, str] = {}
    counts = {"ended": 0}

    def on_progress(progress: Progress) -> None:
        rate = f", {progress.images_per_minute} images/min" if progress.images_per_minute else ""
        head = (f"jobs: {progress.done} done, {progress.failed} failed, {progress.running} running, "
                f"{progress.queued} queued" + (f", {progress.skipped} skipped" if progress.skipped else "") + rate)
        lines = [head] + [f"  {w.name}: {w.state}, {w.done} done" + (f", {w.running} in hand" if w.running else "")
                          + (f" ({w.note})" if w.note and w.state != "ready" else "") for w in progress.workers]
        show(lines)
        for worker in progress.workers:  # without a terminal: one line per change of a worker's state
            if said.get(worker.name) != worker.state:
                said[worker.name] = worker.state
                out.event(f"worker {worker.name}: {worker.state}" + (f" ({worker.note})" if worker.note else ""))
        ended = progress.done + progress.failed
        if ended != counts["ended"]:
            counts["ended"] = ended
            out.event(head)
    return on_progress


def _summary(out: Output, result: ClusterResult) -> None:
    for line in result.lines:
        if line["status"] == "done":
            out.line(f"{line['image']}  (seed {line['seed']}, {line['worker']}"
                     + (f", attempt {line['attempts']}" if line["attempts"] > 1 else "") + ")")
        else:
            out.line(f"failed: job {line['job']} (seed {line['seed']}): {line['error']}", style="red")
    totals = result.totals()
    rate = f", {totals['images_per_minute']} images/min" if totals["images_per_minute"] else ""
    skipped = f", {totals['skipped']} already done (skipped)" if totals["skipped"] else ""
    out.line(f"{totals['done']} done, {totals['failed']} failed{skipped}: {totals['images']} images in "
             f"{totals['seconds']:.1f} s{rate}", style="green" if result.ok else "yellow")
