"""GET /ws?clientId=ID: the first frame is always `status` with the socket's id (`sid`); an optional
`feature_flags` first text frame from the client is answered with the server's flags; later client frames
are ignored. Execution events are sent through `FakeComfy.send(sid, message)`."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from tests.fakes.comfyui.state import COMFY

if TYPE_CHECKING:
    from tests.fakes.comfyui.app import ApiRoutes


async def websocket(request: web.Request) -> web.WebSocketResponse:
    comfy = request.app[COMFY]
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    sid = request.query.get("clientId") or uuid.uuid4().hex
    comfy.sockets[sid] = socket
    comfy.ws_clients.append(sid)
    try:
        await socket.send_str(json.dumps(comfy.status_message(sid)))
        first = True
        async for msg in socket:
            if msg.type != WSMsgType.TEXT:
                continue
            if first:
                await _negotiate(request, sid, msg.data)
            first = False
    finally:
        if comfy.sockets.get(sid) is socket:
            del comfy.sockets[sid]
    return socket


async def _negotiate(request: web.Request, sid: str, text: str) -> None:
    comfy = request.app[COMFY]
    try:
        message = json.loads(text)
    except ValueError:
        return
    if isinstance(message, dict) and message.get("type") == "feature_flags":
        comfy.feature_flags[sid] = dict(message.get("data") or {})
        server_flags = {
            "supports_preview_metadata": True,
            "max_upload_size": int(comfy.args.max_upload_size * 1024 * 1024),
        }
        await comfy.send(sid, {"type": "feature_flags", "data": server_flags})


def register(routes: ApiRoutes) -> None:
    routes.get("/ws", websocket)
