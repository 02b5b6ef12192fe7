"""Read-only routes: /system_stats, /object_info[/{cls}], /models[/{folder}], /embeddings, /features, and the
internal /internal/logs[/raw] and /internal/folder_paths."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.comfyui import log
from tests.fakes.comfyui.state import COMFY

if TYPE_CHECKING:
    from tests.fakes.comfyui.app import ApiRoutes


async def system_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[COMFY].system_stats())


async def object_info(request: web.Request) -> web.Response:
    return web.json_response(request.app[COMFY].node_specs())


async def object_info_node(request: web.Request) -> web.Response:
    name = request.match_info["node_class"]
    specs = request.app[COMFY].node_specs()
    return web.json_response({name: specs[name]} if name in specs else {})


async def models(request: web.Request) -> web.Response:
    return web.json_response(request.app[COMFY].folders.names())


async def models_in_folder(request: web.Request) -> web.Response:
    folder = request.match_info["folder"]
    folders = request.app[COMFY].folders
    if folder not in folders.paths:  # aliases (unet, clip) are 404 too
        return web.Response(status=404)
    return web.json_response(folders.files(folder))


async def embeddings(request: web.Request) -> web.Response:
    names = request.app[COMFY].folders.files("embeddings")
    return web.json_response([os.path.splitext(name)[0] for name in names])


async def features(request: web.Request) -> web.Response:
    comfy = request.app[COMFY]
    return web.json_response(
        {"supports_preview_metadata": True, "max_upload_size": int(comfy.args.max_upload_size * 1024 * 1024)}
    )


async def logs_raw(request: web.Request) -> web.Response:
    size = shutil.get_terminal_size()
    return web.json_response(
        {"entries": list(log.ENTRIES), "size": {"cols": size.columns, "rows": size.lines}}
    )


async def logs_text(request: web.Request) -> web.Response:
    return web.json_response("".join(entry["m"] for entry in log.ENTRIES))


async def folder_paths(request: web.Request) -> web.Response:
    return web.json_response(request.app[COMFY].folders.paths)


def register(routes: ApiRoutes) -> None:
    routes.get("/system_stats", system_stats)
    routes.get("/object_info", object_info)
    routes.get("/object_info/{node_class}", object_info_node)
    routes.get("/models", models)
    routes.get("/models/{folder}", models_in_folder)
    routes.get("/embeddings", embeddings)
    routes.get("/features", features)
    routes.internal("GET", "/internal/logs/raw", logs_raw)
    routes.internal("GET", "/internal/logs", logs_text)
    routes.internal("GET", "/internal/folder_paths", folder_paths)
