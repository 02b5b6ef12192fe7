"""Execution routes of the fake ComfyUI: POST /prompt (validated like the real server), /history, /view,
POST /queue (delete/clear), /interrupt, /free; and two test-only internal routes:
GET /fake/received (every POST /prompt body, valid or not) and POST /fake/faults (change exec_faults)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.comfyui.exec_faults import ExecFaults
from tests.fakes.comfyui.execution import Executor
from tests.fakes.comfyui.release import bad_prompt_id
from tests.fakes.comfyui.state import COMFY
from tests.fakes.comfyui.validation import Validator

if TYPE_CHECKING:
    from tests.fakes.comfyui.app import ApiRoutes

EXECUTOR = web.AppKey("executor", Executor)
_NOT_JSON = "500 Internal Server Error\n\nServer got itself in trouble"


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


async def post_prompt(request: web.Request) -> web.Response:
    comfy, executor = request.app[COMFY], request.app[EXECUTOR]
    body = await _json_body(request)
    executor.received.append(body)
    executor.post_log.append({"finished_before": len(comfy.history), "queue_remaining": comfy.queue_remaining()})
    if not isinstance(body, dict):
        return web.Response(status=500, text=_NOT_JSON)
    if executor.faults.bad_json:
        return web.Response(status=200, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
    if "number" in body:
        number: Any = float(body["number"])
    else:
        number = -comfy.counter if body.get("front") else comfy.counter
        comfy.counter += 1
    if "prompt" not in body:
        error = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                 "extra_info": {}}
        return web.json_response({"error": error, "node_errors": {}}, status=400)
    prompt = body["prompt"]
    if comfy.newer and "prompt_id" in body and (refusal := bad_prompt_id(body["prompt_id"])) is not None:
        return web.json_response(refusal, status=400)
    prompt_id = str(body.get("prompt_id", uuid.uuid4()))
    valid, error, outputs, node_errors = Validator(comfy.node_specs()).validate_prompt(
        prompt, body.get("partial_execution_targets"))
    extra = dict(body.get("extra_data") or {})
    if "client_id" in body:
        extra["client_id"] = body["client_id"]
    if not valid:
        return web.json_response({"error": error, "node_errors": node_errors}, status=400)
    await executor.put([number, prompt_id, prompt, extra, outputs])
    return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})


async def get_history(request: web.Request) -> web.Response:
    """ComfyUI's PromptQueue.get_history: `max_items` alone gives the last N; `offset` skips from the start."""
    history = request.app[COMFY].history
    max_items = int(request.query["max_items"]) if "max_items" in request.query else None
    offset = int(request.query.get("offset", -1))
    if offset < 0 and max_items is not None:
        offset = len(history) - max_items
    out: dict[str, Any] = {}
    for i, (key, entry) in enumerate(history.items()):
        if i >= offset:
            out[key] = entry
            if max_items is not None and len(out) >= max_items:
                break
    return web.json_response(out)


async def get_history_item(request: web.Request) -> web.Response:
    prompt_id = request.match_info["prompt_id"]
    entry = request.app[COMFY].history.get(prompt_id)
    return web.json_response({prompt_id: entry} if entry else {})


async def post_history(request: web.Request) -> web.Response:
    body = await _json_body(request) or {}
    history = request.app[COMFY].history
    if body.get("clear"):
        history.clear()
    for prompt_id in body.get("delete", []):
        history.pop(prompt_id, None)
    return web.Response(status=200)


async def view(request: web.Request) -> web.Response:
    comfy = request.app[COMFY]
    name = request.query.get("filename", "")
    kind = request.query.get("type", "output")
    for tag in ("output", "input", "temp"):
        if name.endswith(f" [{tag}]"):
            name, kind = name[: -len(tag) - 3], tag
    if not name or name.startswith("/") or ".." in name or kind not in ("output", "input", "temp"):
        return web.Response(status=400)
    base = {"output": comfy.output_dir, "input": comfy.base_dir / "input", "temp": comfy.temp_dir}[kind]
    folder = (base / request.query.get("subfolder", "")).resolve()
    if not folder.is_relative_to(base.resolve()):
        return web.Response(status=403)
    path = folder / name
    if not path.is_file():
        return web.Response(status=404)
    return web.Response(body=path.read_bytes(), content_type="image/png" if name.endswith(".png") else
                        "application/octet-stream", headers={"Content-Disposition": f'filename="{Path(name).name}"'})


async def post_queue(request: web.Request) -> web.Response:
    body = await _json_body(request) or {}
    executor = request.app[EXECUTOR]
    if body.get("clear"):
        await executor.clear()
    if body.get("delete"):
        await executor.delete([str(p) for p in body["delete"]])
    return web.Response(status=200)


async def interrupt(request: web.Request) -> web.Response:
    body = await _json_body(request)
    prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
    request.app[EXECUTOR].interrupt(prompt_id)
    return web.Response(status=200)


async def free(request: web.Request) -> web.Response:
    body = await _json_body(request)
    body = body if isinstance(body, dict) else {}
    executor = request.app[EXECUTOR]
    executor.free_requests.append(body)
    if body.get("free_memory"):
        executor.cache.clear()  # free_memory also resets the node cache
    return web.Response(status=200)


async def fake_received(request: web.Request) -> web.Response:
    executor = request.app[EXECUTOR]
    return web.json_response({"prompts": executor.received, "count": len(executor.received),
                              "post_log": executor.post_log, "free_requests": executor.free_requests,
                              "ws_clients": request.app[COMFY].ws_clients, "cancel_requests": executor.cancel_requests,
                              "release": request.app[COMFY].release})


async def fake_faults(request: web.Request) -> web.Response:
    executor = request.app[EXECUTOR]
    executor.faults.update(await _json_body(request) or {})
    executor.ws_refused = executor.faults.no_ws
    return web.json_response(asdict(executor.faults))


@web.middleware
async def ws_gate(request: web.Request, handler: Any) -> web.StreamResponse:
    """FAKE_COMFYUI_NO_WS / DROP_WS: /ws answers 404 (a proxy that does not pass WebSockets, say)."""
    executor = request.app[EXECUTOR]
    if request.path in ("/ws", "/api/ws") and (executor.ws_refused or executor.faults.refuse_ws > 0):
        executor.faults.refuse_ws = max(0, executor.faults.refuse_ws - 1)
        return web.Response(status=404)
    return await handler(request)


async def _start_worker(app: web.Application) -> None:
    app[WORKER] = asyncio.get_running_loop().create_task(app[EXECUTOR].worker())


async def _stop_worker(app: web.Application) -> None:
    app[WORKER].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[WORKER]


WORKER = web.AppKey("worker", asyncio.Task)


def register(routes: ApiRoutes) -> None:
    app = routes.app
    app[EXECUTOR] = Executor(app[COMFY], ExecFaults.from_env())
    app.middlewares.append(ws_gate)
    app.on_startup.append(_start_worker)
    app.on_cleanup.append(_stop_worker)
    routes.post("/prompt", post_prompt)
    routes.get("/history", get_history)
    routes.get("/history/{prompt_id}", get_history_item)
    routes.post("/history", post_history)
    routes.get("/view", view)
    routes.post("/queue", post_queue)
    routes.post("/interrupt", interrupt)
    routes.post("/free", free)
    routes.internal("GET", "/fake/received", fake_received)
    routes.internal("POST", "/fake/faults", fake_faults)
