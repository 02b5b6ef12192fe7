"""The fake ComfyUI's prompt queue and worker: it runs a validated graph the way the real one reports it.

Per prompt (protocol.md section 4.3, the recorded samples): ``status`` on put and on take,
``execution_start``, ``execution_cached``, then per node ``progress_state`` + ``executing``; the sampler sends
``progress`` i/N (+ ``progress_state``) per step; SaveImage writes real PNGs named
``{prefix}_{counter:05d}_.png`` and sends ``executed``; then ``execution_success``, the history entry,
``status`` and ``executing`` with ``node: null``. Errors and interrupts end with ``execution_error`` /
``execution_interrupted`` instead. Node outputs are cached by input signature across prompts, so an identical
re-submission runs nothing and points at the old files, like the real cache.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from tests.fakes.comfyui.exec_faults import ExecFaults
from tests.fakes.comfyui.png import png_bytes
from tests.fakes.comfyui.release import preview_frame
from tests.fakes.comfyui.state import FakeComfy

SAMPLERS = ("KSampler", "KSamplerAdvanced")
LOADERS_WITH_FILES = ("UNETLoader", "DualCLIPLoader", "CLIPLoader", "VAELoader", "LoraLoader",
                      "LoraLoaderModelOnly", "CheckpointLoaderSimple")
OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
               "1.06 GiB is free. Including non-PyTorch memory, this process has 77.98 GiB memory in use. Of the "
               "allocated memory 76.80 GiB is allocated by PyTorch, and 0.61 GiB is reserved by PyTorch but "
               "unallocated.\nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked "
               "before you might have accidentally set the batch_size to a large number.\n")
VAE_INVALID = ("ERROR: VAE is invalid: None\n\nIf the VAE is from a checkpoint loader node your checkpoint does "
               "not contain a valid VAE.\n")


class NodeFailed(Exception):
    def __init__(self, node_id: str, exception_type: str, message: str):
        super().__init__(message)
        self.node_id, self.exception_type, self.message = node_id, exception_type, message


class Interrupted(Exception):
    def __init__(self, node_id: str):
        super().__init__(node_id)
        self.node_id = node_id


def now_ms() -> int:
    return int(time.time() * 1000)


class Executor:
    def __init__(self, comfy: FakeComfy, faults: ExecFaults):
        self.comfy = comfy
        self.faults = faults
        self.heap: list[tuple[Any, str, list[Any]]] = []
        self.wake = asyncio.Event()
        self.interrupt_flag = False
        self.received: list[Any] = []  # every POST /prompt body, valid or not (test-only view)
        self.post_log: list[dict[str, int]] = []  # per POST: prompts finished and queued at that moment
        self.cache: dict[str, Any] = {}  # node signature -> its UI output (None for nodes without one)
        self.free_requests: list[dict[str, Any]] = []
        self.ws_refused = faults.no_ws
        self.prompts_run = 0
        self.cancelled: list[str] = []  # prompt ids cancelled through the jobs API (release 0.38)
        self.cancel_requests: list[str] = []  # every id POST /api/jobs/{id}/cancel was asked for (test-only)

    # -- queue -----------------------------------------------------------------------------------------
    def sync_pending(self) -> None:
        self.comfy.queue_pending[:] = [item for _, _, item in self.heap]

    async def put(self, item: list[Any]) -> None:
        heapq.heappush(self.heap, (item[0], item[1], item))
        self.sync_pending()
        await self.comfy.broadcast(self.comfy.status_message())
        self.wake.set()

    async def delete(self, prompt_ids: list[str]) -> None:
        self.heap = [entry for entry in self.heap if entry[1] not in prompt_ids]
        heapq.heapify(self.heap)
        self.sync_pending()
        await self.comfy.broadcast(self.comfy.status_message())

    async def clear(self) -> None:
        await self.delete([entry[1] for entry in self.heap])

    def interrupt(self, prompt_id: str | None) -> None:
        running = self.comfy.queue_running[0][1] if self.comfy.queue_running else None
        if prompt_id is None or prompt_id == running:
            self.interrupt_flag = True

    async def worker(self) -> None:
        while True:
            while not self.heap:
                self.wake.clear()
                await self.wake.wait()
            _, _, item = heapq.heappop(self.heap)
            self.sync_pending()
            self.comfy.queue_running[:] = [item]
            await self.comfy.broadcast(self.comfy.status_message())
            self.interrupt_flag = False
            await self.run_prompt(item)

    # -- one prompt -----------------------------------------------------------------------------------
    async def run_prompt(self, item: list[Any]) -> None:
        _number, prompt_id, prompt, extra, outputs = item
        self.prompts_run += 1
        sid = extra.get("client_id")
        started = time.monotonic()
        messages: list[list[Any]] = []
        ui_outputs: dict[str, Any] = {}
        executed: list[str] = []

        async def emit(kind: str, data: dict[str, Any], to_all_without_client: bool = False) -> None:
            if kind.startswith("execution_"):
                messages.append([kind, data])
            message = {"type": kind, "data": data}
            if sid:
                await self.comfy.send(sid, message)
            elif to_all_without_client:
                await self.comfy.broadcast(message)

        await emit("execution_start", {"prompt_id": prompt_id, "timestamp": now_ms()})
        if self.faults.drop_ws or self.faults.drop_ws_once:
            await self.drop_sockets(refuse_new=self.faults.drop_ws)
            self.faults.drop_ws_once = False
        order = execution_order(prompt, outputs)
        signatures = {node: signature(prompt, node) for node in order}
        cached = [node for node in order if signatures[node] in self.cache]
        await emit("execution_cached", {"nodes": cached, "prompt_id": prompt_id, "timestamp": now_ms()})
        progress = ProgressState(prompt_id, emit)
        try:
            for node in order:
                if node in cached:
                    if self.cache[signatures[node]] is not None:
                        ui_outputs[node] = self.cache[signatures[node]]
                        await emit("executed", executed_data(node, ui_outputs[node], prompt_id))
                    continue
                output = await self.run_node(prompt, node, prompt_id, emit, progress)
                executed.append(node)
                self.cache[signatures[node]] = output
                if output is not None:
                    ui_outputs[node] = output
                    await emit("executed", executed_data(node, output, prompt_id))
            await self.pad_to_fixed_time(prompt, outputs[0], started)
            await emit("execution_success", {"prompt_id": prompt_id, "timestamp": now_ms()})
            status = {"status_str": "success", "completed": True}
        except NodeFailed as exc:
            await emit("execution_error", error_data(prompt, exc, prompt_id, executed))
            status, ui_outputs = {"status_str": "error", "completed": False}, {}
        except Interrupted as exc:
            await emit("execution_interrupted", {"prompt_id": prompt_id, "node_id": exc.node_id,
                                                 "node_type": prompt[exc.node_id]["class_type"],
                                                 "executed": executed, "timestamp": now_ms()},
                       to_all_without_client=True)
            status, ui_outputs = {"status_str": "error", "completed": False}, {}
        self.comfy.history[prompt_id] = {
            "prompt": item, "outputs": ui_outputs, "status": {**status, "messages": messages},
            "meta": {node: {"node_id": node, "display_node": node, "parent_node": None, "real_node_id": node}
                     for node in ui_outputs}}
        self.comfy.queue_running.clear()
        await self.comfy.broadcast(self.comfy.status_message())
        if sid:
            await self.comfy.send(sid, {"type": "executing", "data": {"node": None, "prompt_id": prompt_id}})

    async def run_node(self, prompt: dict[str, Any], node: str, prompt_id: str, emit: Any,
                       progress: ProgressState) -> dict[str, Any] | None:
        if self.interrupt_flag:
            raise Interrupted(node)
        cls = prompt[node]["class_type"]
        await progress.update(node, 0.0, 1.0, "running")
        await emit("executing", {"node": node, "display_node": node, "prompt_id": prompt_id})
        if cls == "VAELoader" and self.faults.load_error:
            raise NodeFailed(node, "RuntimeError", VAE_INVALID)
        if cls in SAMPLERS:
            await self.sample(prompt, node, prompt_id, emit, progress)
        output = self.save_images(prompt, node) if cls in ("SaveImage", "PreviewImage") else None
        await progress.update(node, 1.0, 1.0, "finished")
        return output

    async def sample(self, prompt: dict[str, Any], node: str, prompt_id: str, emit: Any,
                     progress: ProgressState) -> None:
        steps = int(prompt[node]["inputs"].get("steps", 1))
        delay = self.step_delay(prompt, steps)
        for step in range(1, steps + 1):
            if self.faults.oom or (self.faults.oom_from_prompt is not None
                                   and self.prompts_run >= self.faults.oom_from_prompt):
                raise NodeFailed(node, "torch.OutOfMemoryError", OOM_MESSAGE)
            if self.faults.die_at_step is not None and step >= self.faults.die_at_step:
                self.comfy.log.error("fake ComfyUI: dying at step %s (FAKE_COMFYUI_DIE_AT_STEP)", step)
                os._exit(1)
            await asyncio.sleep(delay)
            if self.interrupt_flag:  # checked in every progress callback
                raise Interrupted(node)
            await emit("progress", {"value": step, "max": steps, "prompt_id": prompt_id, "node": node},
                       to_all_without_client=True)
            if self.comfy.newer:
                await self.send_preview(prompt_id, node)
            await progress.update(node, step, steps, "running")

    def step_delay(self, prompt: dict[str, Any], steps: int) -> float:
        if self.faults.seconds_per_image is None:
            return self.faults.step_seconds
        return 0.0  # the fixed time is padded at the end instead (pad_to_fixed_time)

    async def pad_to_fixed_time(self, prompt: dict[str, Any], output: str, started: float) -> None:
        if self.faults.seconds_per_image is None:
            return
        batch = int(image_params(prompt, output)["batch"])
        remaining = self.faults.seconds_per_image * batch - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)

    def save_images(self, prompt: dict[str, Any], node: str) -> dict[str, Any]:
        inputs = prompt[node]["inputs"]
        prefix = str(inputs.get("filename_prefix", "ComfyUI"))
        kind = "output" if prompt[node]["class_type"] == "SaveImage" else "temp"
        base = self.comfy.output_dir if kind == "output" else self.comfy.temp_dir
        subfolder, _, name = prefix.replace("\\", "/").rpartition("/")
        folder = base / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        counter = next_counter(folder, name)
        params = image_params(prompt, node)
        images = []
        for i in range(int(params["batch"])):
            filename = f"{name}_{counter + i:05d}_.png"
            data = png_bytes(int(params["width"]), int(params["height"]), int(params["seed"]) * 1000 + i,
                             blank=self.faults.blank, text={"prompt": json.dumps(prompt)})
            (folder / filename).write_bytes(data)
            images.append({"filename": filename, "subfolder": subfolder, "type": kind})
        return {"images": images}

    async def send_preview(self, prompt_id: str, node: str) -> None:
        item = self.comfy.queue_running[0] if self.comfy.queue_running else None
        sid = item[3].get("client_id") if item else None
        negotiated = bool(self.comfy.feature_flags.get(sid or "", {}).get("supports_preview_metadata"))
        await self.comfy.send_bytes(sid, preview_frame(negotiated, prompt_id, node))

    async def drop_sockets(self, refuse_new: bool = True) -> None:
        self.ws_refused = refuse_new
        for sid, socket in list(self.comfy.sockets.items()):
            await socket.close()
            self.comfy.sockets.pop(sid, None)


class ProgressState:
    """`progress_state`: the cumulative state of every node that started in this prompt."""

    def __init__(self, prompt_id: str, emit: Any):
        self.prompt_id, self.emit = prompt_id, emit
        self.nodes: dict[str, dict[str, Any]] = {}

    async def update(self, node: str, value: float, maximum: float, state: str) -> None:
        self.nodes[node] = {"value": value, "max": maximum, "state": state, "node_id": node,
                            "prompt_id": self.prompt_id, "display_node_id": node, "parent_node_id": None,
                            "real_node_id": node}
        await self.emit("progress_state", {"prompt_id": self.prompt_id, "nodes": dict(self.nodes)},
                        to_all_without_client=True)


def executed_data(node: str, output: dict[str, Any], prompt_id: str) -> dict[str, Any]:
    return {"node": node, "display_node": node, "output": output, "prompt_id": prompt_id}


def error_data(prompt: dict[str, Any], exc: NodeFailed, prompt_id: str, executed: list[str]) -> dict[str, Any]:
    inputs = prompt[exc.node_id]["inputs"]
    return {"prompt_id": prompt_id, "node_id": exc.node_id, "node_type": prompt[exc.node_id]["class_type"],
            "executed": list(executed), "exception_message": exc.message, "exception_type": exc.exception_type,
            "traceback": ['  File "/opt/ComfyUI/execution.py", line 496, in execute\n'],
            "current_inputs": {k: [v if isinstance(v, (int, float, str)) else str(v)] for k, v in inputs.items()},
            "current_outputs": list(prompt), "timestamp": now_ms()}


def execution_order(prompt: dict[str, Any], outputs: list[str]) -> list[str]:
    """Dependencies first (post-order from each output, inputs in key order); unreachable nodes never run."""
    order: list[str] = []

    def visit(node: str) -> None:
        if node in order:
            return
        for value in prompt[node]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and value[0] in prompt:
                visit(value[0])
        order.append(node)

    for out in outputs:
        visit(out)
    return order


def signature(prompt: dict[str, Any], node: str) -> str:
    def sig(n: str) -> Any:
        inputs = {k: (sig(v[0]) if isinstance(v, list) and len(v) == 2 and v[0] in prompt else v)
                  for k, v in sorted(prompt[n]["inputs"].items())}
        return [n, prompt[n]["class_type"], inputs]

    return json.dumps(sig(node), sort_keys=True, default=str)


def image_params(prompt: dict[str, Any], node: str) -> dict[str, Any]:
    """Width, height and batch from the upstream latent node, seed from the upstream sampler."""
    found: dict[str, Any] = {"width": 64, "height": 64, "batch": 1, "seed": 0}
    seen: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current in seen or current not in prompt:
            continue
        seen.add(current)
        inputs = prompt[current]["inputs"]
        if "width" in inputs and "height" in inputs and "batch_size" in inputs:
            found.update(width=inputs["width"], height=inputs["height"], batch=inputs["batch_size"])
        for key in ("seed", "noise_seed"):
            if key in inputs and not isinstance(inputs[key], list):
                found["seed"] = inputs[key]
        stack.extend(v[0] for v in inputs.values() if isinstance(v, list) and len(v) == 2)
    return found


def next_counter(folder: Path, name: str) -> int:
    pattern = re.compile(re.escape(name) + r"_(\d{5})_\.png$")
    counters = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return max(counters, default=0) + 1
