"""The aiohttp application of the fake ComfyUI: the origin check, and every feature's routes.

To add routes, write a module with `register(routes: ApiRoutes) -> None` and append it to ROUTE_MODULES.
`ApiRoutes.get/post` register a handler as `/X` and `/api/X`, like the real server (`/internal/*` has no /api
alias: use `routes.internal`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from tests.fakes.comfyui import routes_exec, routes_info, routes_jobs, routes_queue, ws
from tests.fakes.comfyui.state import COMFY, FakeComfy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiRoutes:
    def __init__(self, app: web.Application):
        self.app = app

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)
        self.app.router.add_route(method, "/api" + path, handler)

    def get(self, path: str, handler: Handler) -> None:
        self.add("GET", path, handler)

    def post(self, path: str, handler: Handler) -> None:
        self.add("POST", path, handler)

    def internal(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)


ROUTE_MODULES: list[Callable[[ApiRoutes], None]] = [routes_info.register, routes_queue.register, ws.register,
                                                    routes_exec.register, routes_jobs.register]


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@web.middleware
async def origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """403 when Host is loopback and an Origin with another host is sent (server.py, without CORS)."""
    comfy = request.app[COMFY]
    host, origin = request.headers.get("Host"), request.headers.get("Origin")
    if comfy.args.enable_cors_header is None and host and origin:
        host_name = urlsplit("//" + host).hostname or ""
        origin_host = urlsplit(origin).netloc
        if _is_loopback(host_name) and origin_host != host:
            return web.Response(status=403)
    return await handler(request)


def build_app(comfy: FakeComfy) -> web.Application:
    app = web.Application(
        middlewares=[origin_check], client_max_size=int(comfy.args.max_upload_size * 1024 * 1024)
    )
    app[COMFY] = comfy
    routes = ApiRoutes(app)
    for register in ROUTE_MODULES:
        register(routes)
    return app
