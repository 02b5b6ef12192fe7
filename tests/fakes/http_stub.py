"""A small real HTTP/1.1 server on 127.0.0.1 (port 0) for tests, answering from a route table.

Used as the stand-in for ComfyUI's read-only routes (/system_stats, /object_info, from recorded samples) and
for the Hub's auth routes (/api/whoami-v2, /api/models/{repo}/auth-check). Runs in a daemon thread; use it as
a context manager so it always stops.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# handler(path, headers) -> (status, headers, body)
Route = Callable[[str, Any], tuple[int, dict[str, str], Any]]


class StubServer:
    def __init__(self, route: Route, host: str = "127.0.0.1", port: int = 0):
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                status, headers, body = route(self.path, self.headers)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def comfy_routes(system_stats: dict[str, Any], object_info: dict[str, Any]) -> Route:
    """ComfyUI's GET /system_stats and /object_info as a v0.3.64 server answers them."""

    def route(path: str, _headers: Any) -> tuple[int, dict[str, str], Any]:
        if path in ("/system_stats", "/api/system_stats"):
            return 200, {}, system_stats
        if path in ("/object_info", "/api/object_info"):
            return 200, {}, object_info
        return 404, {}, b""

    return route


def hub_auth_routes(valid_tokens: dict[str, str], denied_repos: set[str]) -> Route:
    """The Hub's whoami-v2 and auth-check, with its error headers (X-Error-Code / X-Error-Message)."""

    def route(path: str, headers: Any) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if path == "/api/whoami-v2":
            if token not in valid_tokens:
                message = "Invalid credentials in Authorization header"
                return 401, {"X-Error-Message": message}, {"error": message}
            return 200, {}, {"type": "user", "name": valid_tokens[token], "auth": {"type": "access_token"}}
        if path.startswith("/api/models/") and path.endswith("/auth-check"):
            repo = path[len("/api/models/") : -len("/auth-check")]
            if repo in denied_repos:
                message = f"Access to model {repo} is restricted and you are not in the authorized list."
                return 403, {"X-Error-Code": "GatedRepo", "X-Error-Message": message}, {"error": message}
            return 200, {}, {}
        return 404, {"X-Error-Code": "RepoNotFound"}, {"error": "not found"}

    return route
