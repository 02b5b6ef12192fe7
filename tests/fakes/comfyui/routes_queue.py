"""Queue routes that need no execution: GET /queue and GET /prompt (POST /prompt comes with execution)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.comfyui.state import COMFY

if TYPE_CHECKING:
    from tests.fakes.comfyui.app import ApiRoutes


async def get_queue(request: web.Request) -> web.Response:
    comfy = request.app[COMFY]
    return web.json_response({"queue_running": comfy.queue_running, "queue_pending": comfy.queue_pending})


async def get_prompt(request: web.Request) -> web.Response:
    return web.json_response({"exec_info": {"queue_remaining": request.app[COMFY].queue_remaining()}})


def register(routes: ApiRoutes) -> None:
    routes.get("/queue", get_queue)
    routes.get("/prompt", get_prompt)
