"""The jobs API of current ComfyUI releases (FAKE_COMFYUI_RELEASE=0.38 only): GET /api/jobs (newest first,
`limit`/`offset`), GET /api/jobs/{id} (404 when unknown), POST /api/jobs/{id}/cancel (a pending job is removed
from the queue, the running one interrupted; 409 once it finished). Each job is one prompt, by its prompt_id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.comfyui.routes_exec import EXECUTOR
from tests.fakes.comfyui.state import COMFY

if TYPE_CHECKING:
    from tests.fakes.comfyui.app import ApiRoutes


def _jobs(request: web.Request) -> dict[str, dict[str, Any]]:
    comfy, executor = request.app[COMFY], request.app[EXECUTOR]
    jobs: dict[str, dict[str, Any]] = {}
    for prompt_id, entry in comfy.history.items():
        status = entry["status"]
        if prompt_id in executor.cancelled:
            state = "cancelled"
        else:
            state = "completed" if status.get("status_str") == "success" else "failed"
        jobs[prompt_id] = {"id": prompt_id, "status": state, "priority": entry["prompt"][0],
                           "outputs_count": sum(len(o.get("images", [])) for o in entry["outputs"].values())}
    for item in comfy.queue_running:
        jobs[item[1]] = {"id": item[1], "status": "in_progress", "priority": item[0], "outputs_count": 0}
    for item in comfy.queue_pending:
        jobs[item[1]] = {"id": item[1], "status": "pending", "priority": item[0], "outputs_count": 0}
    for job_id in executor.cancelled:  # cancelled before it ran: in neither the queue nor the history
        jobs.setdefault(job_id, {"id": job_id, "status": "cancelled", "priority": None, "outputs_count": 0})
    return jobs


async def list_jobs(request: web.Request) -> web.Response:
    jobs = list(reversed(_jobs(request).values()))
    limit = int(request.query.get("limit", 100))
    offset = int(request.query.get("offset", 0))
    page = jobs[offset:offset + limit]
    return web.json_response({"jobs": page, "pagination": {"offset": offset, "limit": limit, "total": len(jobs),
                                                           "has_more": offset + len(page) < len(jobs)}})


async def get_job(request: web.Request) -> web.Response:
    job = _jobs(request).get(request.match_info["job_id"])
    if job is None:
        return web.json_response({"error": "Job not found"}, status=404)
    return web.json_response(job)


async def cancel_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    executor = request.app[EXECUTOR]
    executor.cancel_requests.append(job_id)
    job = _jobs(request).get(job_id)
    if job is None:
        return web.json_response({"error": "Job not found"}, status=404)
    if job["status"] not in ("pending", "in_progress"):
        return web.json_response({"error": f"Job is already {job['status']}"}, status=409)
    executor.cancelled.append(job_id)
    if job["status"] == "pending":
        await executor.delete([job_id])
    else:
        executor.interrupt(job_id)
    return web.json_response({"id": job_id, "status": "cancelled"})


def register(routes: ApiRoutes) -> None:
    if not routes.app[COMFY].newer:
        return
    routes.get("/jobs", list_jobs)
    routes.get("/jobs/{job_id}", get_job)
    routes.post("/jobs/{job_id}/cancel", cancel_job)
