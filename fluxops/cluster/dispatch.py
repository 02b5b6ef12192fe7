"""`generate --cluster`'s driver: one worker actor per GPU of the Ray cluster, pull dispatch from one queue, faults
and retries, and the results written as they come.

Pull dispatch: each worker holds at most two jobs, one running and one queued in its ComfyUI so its GPU never
waits on the network; a third is sent only when one of them ends, so no job waits in a busy server's queue while
another GPU is idle. A job whose worker's ComfyUI died, or whose actor or node was lost, goes back to the front
of the queue for another worker (at most `max_retries` times); a model, validation or node error ends it. Each
job ends once: its images and its `run.jsonl` line are written by this driver alone, the first time it ends.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fluxops.cluster import runtime
from fluxops.cluster.runlog import PastRun, RunLog
from fluxops.cluster.workload import ClusterJob
from fluxops.errors import FluxopsError
from fluxops.generate.workflow import Workflow
from fluxops.models.manifest import Manifest
from fluxops.settings import Settings

DEPTH = 2  # jobs per worker: one running, one queued in its ComfyUI
WAIT_SECONDS = 0.5  # the longest the loop sleeps between progress updates
STOP_SECONDS = 15.0
START_SECONDS = 600.0  # the default bound for a first worker to be placed and its ComfyUI to answer


@dataclass
class WorkerView:
    name: str
    node: str
    state: str = "starting"  # starting, ready, lost, failed (could not start), stopped
    done: int = 0
    failed: int = 0
    running: int = 0
    note: str = ""


@dataclass
class Progress:
    done: int
    failed: int
    queued: int
    running: int
    skipped: int
    images: int
    images_per_minute: float | None
    workers: list[WorkerView]


@dataclass
class ClusterResult:
    lines: list[dict[str, Any]]  # run.jsonl lines of this run, in the order the jobs ended
    skipped: list[dict[str, Any]]  # the lines of earlier runs for the jobs skipped now
    workers: list[WorkerView]
    seconds: float
    timeline: list[dict[str, Any]] = field(default_factory=list)  # per job: driver and worker timestamps
    first_image_at: float | None = None  # time.monotonic()

    @property
    def failed(self) -> int:
        return sum(1 for line in self.lines if line["status"] == "failed")

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def totals(self) -> dict[str, Any]:
        images = sum(len(line.get("images") or []) for line in self.lines)
        return {"jobs": len(self.lines) + len(self.skipped), "done": len(self.lines) - self.failed,
                "failed": self.failed, "skipped": len(self.skipped), "images": images,
                "seconds": round(self.seconds, 3),
                "images_per_minute": round(60 * images / self.seconds, 2) if images and self.seconds else None}

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": [*self.skipped, *self.lines], "totals": self.totals(),
                "workers": [vars(w) for w in self.workers]}


@dataclass
class _Worker:
    view: WorkerView
    actor: Any
    inflight: dict[Any, ClusterJob] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.view.state == "ready"


class Dispatcher:
    def __init__(self, settings: Settings, extra_args: list[str], workflow: Workflow, manifest: Manifest | None,
                 max_retries: int, on_progress: Callable[[Progress], None] | None = None,
                 start_timeout: float = START_SECONDS):
        self.settings = settings
        self.extra_args = extra_args
        self.workflow = workflow
        self.manifest = manifest
        self.max_retries = max_retries
        self.start_timeout = start_timeout
        self.on_progress = on_progress or (lambda _p: None)
        self.log = RunLog(settings.output_dir)
        self.workers: list[_Worker] = []
        self.starting: dict[Any, _Worker] = {}
        self.queue: deque[ClusterJob] = deque()
        self.lines: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.timeline: list[dict[str, Any]] = []
        self.began = time.monotonic()
        self.first_image_at: float | None = None
        self.dispatched: dict[Any, float] = {}

    # -- the run -----------------------------------------------------------------------------------------
    def run(self, ray: ModuleType, jobs: list[ClusterJob], past: PastRun) -> ClusterResult:
        for job in jobs:
            if job.key in past.done:
                self.skipped.append(past.done[job.key])
            elif job.error is not None:
                self._end(job, None, "failed", error=job.error)
            else:
                self.queue.append(job)
        if self.queue:
            self._start_workers(ray)
            try:
                self._loop(ray)
            except KeyboardInterrupt:
                self._interrupt(ray)
                raise
            finally:
                self._stop(ray)
        return ClusterResult(self.lines, self.skipped, [w.view for w in self.workers],
                             time.monotonic() - self.began, self.timeline, self.first_image_at)

    def _start_workers(self, ray: ModuleType) -> None:
        from fluxops.cluster.worker import GpuWorker

        remote = ray.remote(num_gpus=1, max_concurrency=DEPTH + 2, max_restarts=0)(GpuWorker)
        for node in runtime.gpu_nodes(ray):
            for gpu in range(node.gpus):
                name = f"{node.label}:gpu{gpu}"
                actor = remote.options(scheduling_strategy=runtime.pinned_to(node.node_id)).remote(
                    name, self.settings, self.extra_args, self.workflow, self.manifest)
                worker = _Worker(WorkerView(name, node.label), actor)
                self.workers.append(worker)
                self.starting[actor.ready.remote()] = worker

    def _loop(self, ray: ModuleType) -> None:
        while self.queue or any(w.inflight for w in self.workers):
            if self.starting and not any(w.usable for w in self.workers) and self._start_overdue():
                self._give_up_starting(ray)
            if not self.starting and not any(w.usable for w in self.workers):
                self._no_workers_left()
                break
            self._fill()
            self._report()
            refs = [*self.starting, *(ref for w in self.workers for ref in w.inflight)]
            ready, _ = ray.wait(refs, num_returns=1, timeout=WAIT_SECONDS)
            for ref in ready:
                if ref in self.starting:
                    self._started(ray, ref, self.starting.pop(ref))
                else:
                    self._returned(ray, ref)
        self._report()

    def _fill(self) -> None:
        """Each ready worker gets up to DEPTH jobs, the idle ones first."""
        for depth in range(1, DEPTH + 1):
            for worker in self.workers:
                if worker.usable and len(worker.inflight) < depth and self.queue:
                    job = self.queue.popleft()
                    job.attempts += 1
                    spec = {"key": job.key, "prompt_id": job.prompt_id, "graph": job.graph, "params": job.params,
                            "attempt": job.attempts}
                    ref = worker.actor.run_job.remote(spec)
                    worker.inflight[ref] = job
                    self.dispatched[ref] = time.monotonic()
                    worker.view.running = len(worker.inflight)

    # -- what comes back ---------------------------------------------------------------------------------
    def _started(self, ray: ModuleType, ref: Any, worker: _Worker) -> None:
        try:
            answer = ray.get(ref)
        except ray.exceptions.RayError as exc:
            worker.view.state, worker.view.note = "lost", f"lost while starting: {_first_line(exc)}"
            return
        if answer["ok"]:
            worker.view.state, worker.view.note = "ready", answer["url"]
        else:
            worker.view.state, worker.view.note = "failed", answer["error"]
            ray.kill(worker.actor)

    def _returned(self, ray: ModuleType, ref: Any) -> None:
        worker = next(w for w in self.workers if ref in w.inflight)
        job = worker.inflight.pop(ref)
        worker.view.running = len(worker.inflight)
        returned = time.monotonic()
        try:
            answer = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the worker's code raised: the job fails, the worker stays
            self._end(job, worker, "failed", error=f"the worker failed on it: {_first_line(exc)}")
            return
        except ray.exceptions.RayError as exc:  # the actor (or its node) is gone
            self._lose(ray, worker, f"lost: {_first_line(exc)}")
            self._retry_or_fail(job, worker, f"its worker {worker.view.name} was lost")
            return
        self.timeline.append({"job": job.key, "worker": worker.view.name, "dispatched": self.dispatched.pop(ref),
                              "returned": returned, "began": answer["began"], "ended": answer["ended"],
                              "seconds": answer.get("seconds")})
        if answer["status"] == "done":
            self._done(job, worker, answer)
            return
        if answer.get("server_dead"):
            self._lose(ray, worker, "its ComfyUI died")
        if answer.get("retryable"):
            self._retry_or_fail(job, worker, answer["error"])
        else:
            worker.view.failed += 1
            self._end(job, worker, "failed", error=answer["error"])

    def _done(self, job: ClusterJob, worker: _Worker, answer: dict[str, Any]) -> None:
        extra = {"node": worker.view.node, "worker": worker.view.name, "attempt": job.attempts}
        try:
            paths = self.log.save_images(answer["images"], extra)
        except FluxopsError as exc:
            self._end(job, worker, "failed", error=exc.message)
            return
        if self.first_image_at is None and paths:
            self.first_image_at = time.monotonic()
        worker.view.done += 1
        self._end(job, worker, "done", seconds=answer.get("seconds"), images=paths)

    def _retry_or_fail(self, job: ClusterJob, worker: _Worker, why: str) -> None:
        if job.attempts <= self.max_retries:
            self.queue.appendleft(job)
            return
        self._end(job, worker, "failed", error=f"{why} (given up after {job.attempts} attempts)")

    def _lose(self, ray: ModuleType, worker: _Worker, why: str) -> None:
        if worker.view.state == "ready":
            worker.view.state, worker.view.note = "lost", why
            ray.kill(worker.actor)  # its ComfyUI dies with it (parent-death signal)

    def _end(self, job: ClusterJob, worker: _Worker | None, status: str, error: str | None = None,
             seconds: float | None = None, images: list[str] | None = None) -> None:
        line = self.log.append({"job": job.key, "prompt": job.prompt, "seed": job.seed, "status": status,
                                "node": worker.view.node if worker else None,
                                "worker": worker.view.name if worker else None, "attempts": job.attempts,
                                "seconds": seconds, "image": images[0] if images else None, "error": error})
        self.lines.append({**line, "images": images or []})

    def _start_overdue(self) -> bool:
        return time.monotonic() - self.began > self.start_timeout

    def _give_up_starting(self, ray: ModuleType) -> None:
        """No worker ready in time: an actor Ray cannot place (its GPU held by another Ray job) waits forever,
        so the run stops waiting for it instead of hanging."""
        for worker in self.starting.values():
            worker.view.state = "failed"
            worker.view.note = (f"not started within {self.start_timeout:g} s: is its GPU held by another Ray "
                                "job? (`ray status`)")
            with contextlib.suppress(Exception):  # already gone
                ray.kill(worker.actor)
        self.starting.clear()

    def _no_workers_left(self) -> None:
        why = "; ".join(sorted({w.view.note for w in self.workers if w.view.note})) or "no worker could start"
        while self.queue:
            self._end(self.queue.popleft(), None, "failed", error=f"no worker left to run it ({why})")

    # -- progress and the end ----------------------------------------------------------------------------
    def _report(self) -> None:
        done = sum(1 for line in self.lines if line["status"] == "done")
        images = sum(len(line["images"]) for line in self.lines)
        elapsed = time.monotonic() - self.began
        self.on_progress(Progress(done, len(self.lines) - done, len(self.queue),
                                  sum(len(w.inflight) for w in self.workers), len(self.skipped), images,
                                  round(60 * images / elapsed, 2) if images else None,
                                  [w.view for w in self.workers]))

    def _interrupt(self, ray: ModuleType) -> None:
        """Ctrl-C: every worker's server drops its queue and interrupts what runs."""
        refs = [w.actor.interrupt.remote() for w in self.workers if w.usable]
        _wait_quietly(ray, refs, 5.0)

    def _stop(self, ray: ModuleType) -> None:
        """Stop every worker's ComfyUI and the actors themselves."""
        live = [w for w in self.workers if w.view.state in ("ready", "starting")]
        _wait_quietly(ray, [w.actor.stop.remote() for w in live], STOP_SECONDS)
        for worker in self.workers:
            if worker.view.state in ("ready", "starting"):
                worker.view.state = "stopped"
            with contextlib.suppress(Exception):  # already gone
                ray.kill(worker.actor)


def _wait_quietly(ray: ModuleType, refs: list[Any], timeout: float) -> None:
    if not refs:
        return
    with contextlib.suppress(ray.exceptions.RayError):
        ray.wait(refs, num_returns=len(refs), timeout=timeout)


def generate_on_cluster(settings: Settings, address: str, entries: list[Any], workflow_path: Any,
                        extra_args: list[str], max_retries: int,
                        on_progress: Callable[[Progress], None] | None = None, yes: bool = False,
                        start_timeout: float = START_SECONDS) -> ClusterResult:
    """Plan every job (nothing is sent for a bad one), skip those an earlier run into the same output finished,
    and run the rest on every GPU of the Ray cluster at `address`."""
    from fluxops.cluster.runlog import read_past
    from fluxops.cluster.workload import build_jobs
    from fluxops.generate.imagefiles import ensure_writable
    from fluxops.generate.workflow import load_workflow
    from fluxops.models.manifest import load_manifest

    began = time.monotonic()
    ensure_writable(settings.output_dir)
    past = read_past(settings.output_dir)
    jobs = build_jobs(entries, workflow_path, settings.manifest, past.seeds, yes)
    workflow = load_workflow(workflow_path)
    manifest = load_manifest(settings.manifest) if settings.manifest is not None else None
    dispatcher = Dispatcher(settings, extra_args, workflow, manifest, max_retries, on_progress, start_timeout)
    dispatcher.began = began
    if all(job.key in past.done or job.error for job in jobs):
        return dispatcher.run(runtime.import_ray(), jobs, past)  # nothing to run: Ray is not even started
    with runtime.connected(address) as ray:
        return dispatcher.run(ray, jobs, past)


def _first_line(exc: BaseException) -> str:
    """Ray's errors carry the remote traceback: the line that says what happened is enough here."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else type(exc).__name__)
