"""A small HTTP client for ComfyUI's API, with one mapping from transport failures to FluxopsError.

The routes are those of ComfyUI's `server.py` (https://docs.comfy.org/development/comfyui-server/comms_routes).
Every route exists as `/X` and `/api/X`; this client uses the plain `/X` form, which every ComfyUI version
serves. `request()` is public so other features (submitting prompts, fetching images) reuse the same error
mapping instead of catching requests' exceptions themselves.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import requests

from fluxops.errors import FluxopsError

DEFAULT_TIMEOUT = 10.0
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def base_url(host: str, port: int, scheme: str = "http") -> str:
    """`http://host:port`, with an IPv6 address in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"{scheme}://{host}:{port}"


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ComfyClient:
    """Talks to one ComfyUI server. Methods return the decoded JSON or raise FluxopsError."""

    def __init__(
        self, base_url: str, timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self._jobs_api: bool | None = None  # has_jobs_api(), once asked
        if session is None and is_loopback(urlsplit(self.base_url).hostname or ""):
            # A local server is never reached through a proxy (an HTTP_PROXY without NO_PROXY would
            # otherwise send 127.0.0.1 traffic to the proxy).
            self.session.trust_env = False

    # -- transport ----------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def ws_url(self, client_id: str) -> str:
        """The WebSocket address for `client_id` (send the same id as `client_id` with each prompt)."""
        scheme = "wss" if self.base_url.startswith("https:") else "ws"
        return f"{scheme}{self.base_url[self.base_url.index(':') :]}/ws?clientId={client_id}"

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        ok_statuses: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; connection and HTTP failures become FluxopsError. 2xx and `ok_statuses` pass."""
        url = self.url(path)
        try:
            response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise FluxopsError(
                "comfy.unreachable", f"no answer from ComfyUI at {self.base_url} (connection timed out)"
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise FluxopsError(
                "comfy.timeout",
                f"ComfyUI at {self.base_url} did not answer {method} {path} "
                f"within {timeout or self.timeout:g} s",
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise FluxopsError(
                "comfy.unreachable", f"no ComfyUI server answers at {self.base_url} ({_reason(exc)})"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise FluxopsError(
                "comfy.unreachable", f"cannot talk to ComfyUI at {self.base_url}: {exc}"
            ) from exc
        if response.status_code >= 400 and response.status_code not in ok_statuses:
            body = response.text.strip().splitlines()
            detail = f": {body[0][:200]}" if body else ""
            raise FluxopsError(
                "comfy.http_error",
                f"ComfyUI answered {method} {path} with HTTP {response.status_code}{detail}",
            )
        return response

    def get_json(
        self, path: str, *, timeout: float | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        response = self.request("GET", path, timeout=timeout, params=params)
        return decode_json(response, f"GET {path}")

    # -- routes ------------------------------------------------------------------------------------------
    def system_stats(self, timeout: float | None = None) -> dict[str, Any]:
        """`/system_stats`: versions, `argv`, and the compute device with its VRAM (bytes)."""
        data = self.get_json("/system_stats", timeout=timeout)
        if not isinstance(data, dict) or not isinstance(data.get("system"), dict):
            raise FluxopsError(
                "comfy.bad_response",
                f"{self.base_url}/system_stats is not ComfyUI's answer (no 'system' object)",
            )
        return data

    def queue(self) -> dict[str, list[Any]]:
        """`/queue`: `queue_running` and `queue_pending` (pending items are in heap order, not sorted)."""
        data = self.get_json("/queue")
        if not isinstance(data, dict) or "queue_pending" not in data:
            raise FluxopsError("comfy.bad_response", f"{self.base_url}/queue is not ComfyUI's answer")
        return data

    def queue_remaining(self) -> int:
        """`GET /prompt`: running + pending prompts."""
        data = self.get_json("/prompt")
        try:
            return int(data["exec_info"]["queue_remaining"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FluxopsError(
                "comfy.bad_response", f"{self.base_url}/prompt is not ComfyUI's answer"
            ) from exc

    def object_info(self, node: str | None = None) -> dict[str, Any]:
        """`/object_info` (all node classes) or one class; an unknown class gives `{}` (with HTTP 200)."""
        data = self.get_json(f"/object_info/{node}" if node else "/object_info")
        if not isinstance(data, dict):
            raise FluxopsError("comfy.bad_response", f"{self.base_url}/object_info is not ComfyUI's answer")
        return data

    def models(self, folder: str) -> list[str]:
        """File names ComfyUI lists in a model folder (canonical names only: `unet`/`clip` are 404)."""
        response = self.request("GET", f"/models/{folder}", ok_statuses=(404,))
        if response.status_code == 404:
            raise FluxopsError(
                "comfy.unknown_model_folder",
                f"ComfyUI at {self.base_url} has no model folder named {folder!r}",
            )
        data = decode_json(response, f"GET /models/{folder}")
        if not isinstance(data, list):
            raise FluxopsError("comfy.bad_response", f"{self.base_url}/models/{folder} is not a list")
        return [str(name) for name in data]

    # -- running prompts: /prompt, /queue, /history, /interrupt ---------------------------------------
    def post_prompt(self, graph: dict[str, Any], *, client_id: str, prompt_id: str | None = None,
                    extra_data: dict[str, Any] | None = None) -> requests.Response:
        """`POST /prompt`. Returns the response: 200 (queued) or 400 (`error` + `node_errors`, for the caller
        to explain with the graph at hand). `client_id` routes the execution events to our WebSocket."""
        body: dict[str, Any] = {"prompt": graph, "client_id": client_id}
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        if extra_data:
            body["extra_data"] = extra_data
        return self.request("POST", "/prompt", json=body, ok_statuses=(400,))

    def history(self, prompt_id: str) -> dict[str, Any]:
        """`/history/{id}`: `{id: entry}` once the prompt has finished, `{}` before (never 404)."""
        data = self.get_json(f"/history/{prompt_id}")
        return data if isinstance(data, dict) else {}

    def view(self, filename: str, subfolder: str = "", kind: str = "output") -> bytes:
        """The bytes of an output image (`/view`), as ComfyUI named it in `executed`/history."""
        response = self.request("GET", "/view", params={"filename": filename, "subfolder": subfolder,
                                                        "type": kind}, timeout=max(self.timeout, 60.0))
        return response.content

    def delete_queued(self, prompt_ids: list[str]) -> None:
        """`POST /queue {"delete": [...]}`: removes pending prompts only (the running one is untouched)."""
        self.request("POST", "/queue", json={"delete": list(prompt_ids)})

    def has_jobs_api(self) -> bool:
        """Whether the server has the jobs API of current releases (`/api/jobs`); 0.3.x answers 404. The
        answer is remembered: ask once per client."""
        if self._jobs_api is None:
            response = self.request("GET", "/api/jobs", params={"limit": 1}, ok_statuses=(404, 405))
            try:
                self._jobs_api = response.status_code == 200 and isinstance(response.json().get("jobs"), list)
            except (ValueError, AttributeError):
                self._jobs_api = False
        return self._jobs_api

    def cancel_job(self, prompt_id: str) -> bool:
        """`POST /api/jobs/{id}/cancel`: removes a pending prompt or interrupts it when it runs. False when
        the server no longer has it unfinished (404 unknown, 409 already finished)."""
        response = self.request("POST", f"/api/jobs/{prompt_id}/cancel", ok_statuses=(404, 409))
        return response.status_code < 400

    def interrupt(self, prompt_id: str | None = None) -> None:
        """`POST /interrupt`: with a prompt id, only if that prompt is the one running; without, global."""
        self.request("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})

    def free(self, unload_models: bool = True, free_memory: bool = True) -> None:
        """`POST /free`: unload models / free cached memory (applied when the worker is idle)."""
        self.request("POST", "/free", json={"unload_models": unload_models, "free_memory": free_memory})

    def features(self) -> dict[str, Any]:
        data = self.get_json("/features")
        return data if isinstance(data, dict) else {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError) as exc:
        raise FluxopsError(
            "comfy.bad_response", f"{what} at {response.url} did not return JSON: is this a ComfyUI server?"
        ) from exc


def _reason(exc: requests.exceptions.ConnectionError) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("No route to host", "no route to host"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed"),
    ):
        if needle in text:
            return reason
    return "cannot connect"
