"""Run prompts through ComfyUI: submit all at once, follow them, fetch and save each image as it finishes.

The WebSocket (same client id as the submissions) gives progress and completion; when it cannot be opened
or drops while the server still answers, the run continues by polling ``/queue`` and ``/history``. A server
that stops answering mid-run is an error of its own. On Ctrl-C (KeyboardInterrupt) the run deletes its own
pending prompts and interrupts its own running one (never anyone else's), then lets the interrupt through.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fluxops.comfy import failures
from fluxops.comfy.client import ComfyClient, decode_json
from fluxops.comfy.ws import EventStream, StreamClosed
from fluxops.errors import FluxopsError
from fluxops.generate.imagefiles import output_stem, save_image
from fluxops.generate.plan import Job
from fluxops.generate.runresult import Event, EventKind, PartialRunError, RunContext, RunResult, iso

__all__ = ["Event", "EventKind", "RunContext", "RunResult", "Runner"]

POLL_SECONDS = 0.2
SILENCE_CHECK_SECONDS = 5.0
HISTORY_WAIT_SECONDS = 3.0
RECONNECT_DELAYS = (0.0, 0.2, 0.5, 1.0)  # right after a drop; then polling, retrying every:
RETRY_STREAM_SECONDS = 2.0
MAX_RECONNECTS = 10  # per run: past that the socket is flapping (a proxy cutting it), and polling is steadier
MISSING_SECONDS = 10.0  # a prompt absent from both queue and history this long was deleted by someone


class Runner:
    def __init__(self, client: ComfyClient, jobs: list[Job], ctx: RunContext,
                 on_event: Callable[[Event], None] | None = None,
                 gpu_processes: Callable[[], list[str]] | None = None):
        self.client = client
        self.jobs = jobs
        self.by_id = {job.prompt_id: job for job in jobs}
        self.ctx = ctx
        self.on_event = on_event or (lambda _e: None)
        self.gpu_processes = gpu_processes  # None: the server is not on this machine
        self.client_id = uuid.uuid4().hex
        self.stream: EventStream | None = None
        self.transport = "websocket"
        self.reconnects = 0
        self.started = 0.0
        self.sampler_id = ctx.workflow.roles["sampler"]
        self.save_id = ctx.workflow.roles["save"]

    # -- the run ---------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        self.started = time.monotonic()
        try:
            self._open_stream()
            for job in self.jobs:
                self._submit(job)
            self._follow()
        except KeyboardInterrupt:
            self.cancel()
            raise
        except FluxopsError as exc:
            self.cancel()
            raise PartialRunError(exc, self.result()) from exc
        finally:
            if self.stream is not None:
                self.stream.close()
        return self.result()

    def adopt_finished(self, job: Job) -> bool:
        """A prompt this server already ran to success under the job's id (a retry of the same job): take its
        images from /history instead of running it again. False when the server has no such prompt."""
        entry = self.client.history(job.prompt_id).get(job.prompt_id)
        if not entry or (entry.get("status") or {}).get("status_str") == "error":
            return False
        self._finish(job, entry)
        return True

    def result(self) -> RunResult:
        images = [image for job in self.jobs for image in job.saved]
        jobs = [{"prompt_id": j.prompt_id, "number": j.number, "seed": j.params.seed, "queued": iso(j.queued_at),
                 "started": iso(j.started_at), "finished": iso(j.finished_at),
                 "seconds_per_step": j.seconds_per_step()} for j in self.jobs]
        return RunResult(images, jobs, time.monotonic() - self.started, self.transport, self.reconnects)

    def cancel(self) -> None:
        """Withdraw our unfinished prompts, never anyone else's. Best effort: the server may be gone.
        Where the server has the jobs API (current releases) each is cancelled by its id; otherwise the
        pending ones are deleted from the queue and ours is interrupted if it is the one running."""
        mine = [job.prompt_id for job in self.jobs if not job.done and job.queued_at is not None]
        if not mine:
            return
        try:
            if self.client.has_jobs_api():
                for prompt_id in mine:
                    self.client.cancel_job(prompt_id)
                how = "cancelled through ComfyUI's jobs API"
            else:
                self.client.delete_queued(mine)
                for prompt_id in mine:  # a targeted interrupt is a no-op unless that prompt is the one running
                    self.client.interrupt(prompt_id)
                how = "removed from ComfyUI's queue (the running one is interrupted)"
        except FluxopsError:
            return  # the server is gone: nothing of ours can run any more
        self.on_event(Event(EventKind.CANCELLED, 0, len(self.jobs), text=f"this run's {len(mine)} unfinished "
                            f"prompt(s) {how}"))

    # -- submitting ----------------------------------------------------------------------------------
    def _open_stream(self) -> None:
        try:
            self.stream = EventStream(self.client.ws_url(self.client_id))
        except FluxopsError:
            self.stream = None
            self._fallback("WebSocket unavailable")

    def _submit(self, job: Job) -> None:
        job.queued_at = time.time()  # before the POST: a Ctrl-C during it must still delete this prompt
        response = self.client.post_prompt(job.graph, client_id=self.client_id, prompt_id=job.prompt_id)
        body = decode_json(response, "POST /prompt")  # an answer that is not JSON is not ComfyUI's
        if response.status_code == 400:
            job.done = True
            raise failures.rejected(body, job.graph)
        job.number = body.get("number") if isinstance(body, dict) else None
        self._emit(EventKind.QUEUED, job)

    # -- following -----------------------------------------------------------------------------------
    def _follow(self) -> None:
        with self._server_gone_is_an_error():
            while self._pending():
                if self.stream is not None:
                    self._follow_stream()  # until done, or the socket is lost and cannot be reopened
                else:
                    self._follow_polling()  # until done, or the socket can be opened again

    @contextmanager
    def _server_gone_is_an_error(self) -> Iterator[None]:
        try:
            yield
        except FluxopsError as exc:
            if exc.code in ("comfy.unreachable", "comfy.timeout"):
                running = next((j for j in self.jobs if not j.done), None)
                what = f" while prompt {running.index + 1}/{len(self.jobs)} was queued or running" if running else ""
                raise FluxopsError("generate.server_gone", f"ComfyUI at {self.client.base_url} stopped "
                                   f"answering{what} ({exc.message})") from exc
            raise

    def _pending(self) -> list[Job]:
        return [job for job in self.jobs if not job.done]

    def _follow_stream(self) -> None:
        silent_since = time.monotonic()
        while self._pending():
            stream = self.stream
            assert stream is not None
            try:
                message = stream.next(timeout=0.5)
            except StreamClosed:
                self.client.queue_remaining()  # raises (-> server gone) if the server went with the socket
                stream.close()
                self.stream = None
                if self.reconnects >= MAX_RECONNECTS:  # a socket that keeps dropping: poll, stop trying
                    self._fallback(f"WebSocket dropped {self.reconnects + 1} times")
                    return
                if not self._reopen_stream(RECONNECT_DELAYS):
                    self._fallback("WebSocket dropped and could not be reopened")
                    return
                self.reconnects += 1
                self.on_event(Event(EventKind.FALLBACK, 0, len(self.jobs), text="WebSocket dropped: reconnected "
                                    "with the same client id, progress continues"))
                self._catch_up()  # what finished while no socket was open
                continue
            if message is not None:
                silent_since = time.monotonic()
                self._handle(message)
            elif time.monotonic() - silent_since > SILENCE_CHECK_SECONDS:
                silent_since = time.monotonic()
                self._catch_up()  # also proves the server is alive

    def _reopen_stream(self, delays: tuple[float, ...]) -> bool:
        """Open the WebSocket again with the same client id: ComfyUI routes our prompts' events by that id, so
        the new socket gets them (https://docs.comfy.org/development/comfyui-server/comms_messages)."""
        for delay in delays:
            time.sleep(delay)
            try:
                self.stream = EventStream(self.client.ws_url(self.client_id))
                return True
            except FluxopsError:
                continue
        return False

    def _follow_polling(self) -> None:
        next_try = time.monotonic() + RETRY_STREAM_SECONDS
        while self._pending():
            self._catch_up()
            if not self._pending():
                return
            if time.monotonic() >= next_try and self.reconnects < MAX_RECONNECTS:
                next_try = time.monotonic() + RETRY_STREAM_SECONDS
                if self._reopen_stream((0.0,)):
                    self.transport = "websocket"
                    self.reconnects += 1
                    self.on_event(Event(EventKind.FALLBACK, 0, len(self.jobs),
                                        text="WebSocket reopened: following the run on it again"))
                    self._catch_up()
                    return
            time.sleep(POLL_SECONDS)

    def _catch_up(self) -> None:
        """Poll /queue and /history: mark started prompts, finish those that left the queue."""
        queue = self.client.queue()
        running = {item[1] for item in queue.get("queue_running", []) if len(item) > 1}
        queued = running | {item[1] for item in queue.get("queue_pending", []) if len(item) > 1}
        for job in self._pending():
            if job.prompt_id in running and job.started_at is None:
                job.started_at = time.time()
                self._emit(EventKind.STARTED, job)
            if job.prompt_id not in queued:
                entry = self.client.history(job.prompt_id).get(job.prompt_id)
                if entry:
                    self._finish(job, entry)
                else:
                    self._missing(job)

    def _missing(self, job: Job) -> None:
        """Neither queued nor in the history: another client deleted it (or the server restarted)."""
        job.missing_since = job.missing_since or time.monotonic()
        if time.monotonic() - job.missing_since > MISSING_SECONDS:
            job.done = True
            raise FluxopsError("generate.interrupted", f"prompt {job.index + 1}/{len(self.jobs)} is no longer in "
                               "ComfyUI's queue or history: it was deleted, or the server restarted")

    def _handle(self, message: dict[str, Any]) -> None:
        kind, data = message["type"], message["data"]
        job = self.by_id.get(str(data.get("prompt_id")))
        if job is None or job.done:
            return  # other clients' prompts, status broadcasts
        if kind == "execution_start":
            job.started_at = (data.get("timestamp") or time.time() * 1000) / 1000
            self._emit(EventKind.STARTED, job)
        elif kind == "executing":
            if data.get("node") is None:
                self._finish(job, self._history_entry(job))
            else:
                self._emit(EventKind.NODE, job, text=failures.where(job.graph, str(data["node"])))
        elif kind == "progress" and str(data.get("node")) == self.sampler_id:
            job.step_times.append(time.monotonic())
            self._emit(EventKind.STEP, job, text=failures.where(job.graph, self.sampler_id),
                       step=int(data.get("value", 0)), steps=int(data.get("max", 0)))
        elif kind == "execution_cached":
            self._mark_cached(job, data.get("nodes"))
        elif kind == "executed" and isinstance(data.get("output"), dict):
            job.outputs[str(data.get("node"))] = data["output"]
        elif kind in ("execution_error", "execution_interrupted"):
            self._raise_failure(job, kind, data)

    def _history_entry(self, job: Job) -> dict[str, Any]:
        """The history entry; ComfyUI stores it just before `executing null`, so it is there (retry briefly)."""
        deadline = time.monotonic() + HISTORY_WAIT_SECONDS
        while True:
            entry = self.client.history(job.prompt_id).get(job.prompt_id)
            if entry or time.monotonic() > deadline:
                return entry or {}
            time.sleep(0.05)

    def _finish(self, job: Job, entry: dict[str, Any]) -> None:
        status: dict[str, Any] = entry.get("status") or {}
        messages: list[list[Any]] = status.get("messages") or []
        stamps: dict[str, float] = {name: data["timestamp"] for name, data in messages
                                    if isinstance(data, dict) and isinstance(data.get("timestamp"), (int, float))}
        if "execution_start" in stamps and job.started_at is None:
            job.started_at = stamps["execution_start"] / 1000
        for name, data in messages:  # polling sees execution_cached only here
            if name == "execution_cached" and isinstance(data, dict):
                self._mark_cached(job, data.get("nodes"))
        if status.get("status_str") == "error":
            kind, data = (messages[-1][0], messages[-1][1]) if messages else ("execution_error", {})
            self._raise_failure(job, str(kind), data if isinstance(data, dict) else {})
        end = stamps.get("execution_success")
        job.finished_at = end / 1000 if end else time.time()
        outputs = entry.get("outputs") or job.outputs
        images = [image for image in _images(outputs, self.save_id) if image.get("type", "output") == "output"]
        if not images:
            raise FluxopsError("generate.no_images", f"prompt {job.prompt_id} finished without an image from "
                               f"{failures.where(job.graph, self.save_id)}")
        for n, image in enumerate(images):
            self._save(job, n, len(images), image)
        job.done = True

    def _mark_cached(self, job: Job, nodes: Any) -> None:
        """`execution_cached` lists the nodes whose outputs are reused; with the Save Image node among them,
        the prompt's images are an earlier run's files (protocol: identical re-submission)."""
        if job.cached or not isinstance(nodes, list) or self.save_id not in [str(n) for n in nodes]:
            return
        job.cached = True
        self._emit(EventKind.CACHED, job, text="ComfyUI answered from its cache (an identical prompt ran "
                   "before): no new image was generated; change --seed or --prompt for a new one")

    def _save(self, job: Job, n: int, total: int, image: dict[str, Any]) -> None:
        data = self.client.view(image["filename"], image.get("subfolder", ""), image.get("type", "output"))
        prefix = str(job.graph[self.save_id]["inputs"].get("filename_prefix", "image"))
        stem = f"{output_stem(prefix)}_{job.params.seed}" + (f"_{n + 1}" if total > 1 else "")
        path, sidecar = save_image(self.ctx.output_dir, stem, data, self._sidecar(job, image, n))
        job.saved.append({"path": str(path), "sidecar": str(sidecar), "seed": job.params.seed,
                          "prompt_id": job.prompt_id, "batch_index": n, "bytes": len(data),
                          "cached": job.cached})
        self._emit(EventKind.SAVED, job, path=path)

    def _sidecar(self, job: Job, image: dict[str, Any], n: int) -> dict[str, Any]:
        started, finished = job.started_at, job.finished_at
        return {
            "prompt": job.params.prompt, "negative": job.params.negative, "seed": job.params.seed,
            "batch_index": n, "parameters": job.params.to_dict(),
            "workflow": {"name": self.ctx.workflow.name, "path": str(self.ctx.workflow.path)},
            "models": self.ctx.models, "server": self.ctx.server, "prompt_id": job.prompt_id,
            "cached": job.cached,
            "comfyui_file": image,
            "timings": {"queued": iso(job.queued_at), "started": iso(started), "finished": iso(finished),
                        "seconds": round(finished - started, 3) if started and finished else None,
                        "seconds_per_step": job.seconds_per_step()},
            "graph": job.graph,
        }

    def _raise_failure(self, job: Job, kind: str, data: dict[str, Any]) -> None:
        job.done = True
        if kind == "execution_interrupted":
            raise FluxopsError("generate.interrupted", f"prompt {job.index + 1}/{len(self.jobs)} was interrupted "
                               f"on the server at {failures.where(job.graph, data.get('node_id'))}")
        if failures.is_out_of_memory(data):
            self._free_memory()
            p = job.params
            raise failures.execution_failed(data, job.graph, failures.RunShape(
                p.batch, p.width, p.height, self.ctx.server_argv, self.gpu_processes() if self.gpu_processes
                else None))
        raise failures.execution_failed(data, job.graph)

    def _free_memory(self) -> None:
        with contextlib.suppress(FluxopsError):  # best effort: the error that follows says what happened
            self.client.free(unload_models=True, free_memory=True)

    def _fallback(self, why: str) -> None:
        self.transport = "polling"
        self.on_event(Event(EventKind.FALLBACK, 0, len(self.jobs),
                            text=f"{why}: following the run by polling /history"))

    def _emit(self, kind: EventKind, job: Job, text: str = "", step: int | None = None, steps: int | None = None,
              path: Path | None = None) -> None:
        self.on_event(Event(kind, job.index, len(self.jobs), text, step, steps, path))


def _images(outputs: dict[str, Any], save_id: str) -> list[dict[str, Any]]:
    ordered = [save_id] + [node for node in outputs if node != save_id]
    return [image for node in ordered for image in (outputs.get(node) or {}).get("images", [])
            if isinstance(image, dict) and "filename" in image]

