"""A fake Hugging Face Hub: a real HTTP/1.1 server on 127.0.0.1 (port 0), plus a second one as the CDN.

It speaks the parts of the Hub protocol fluxops and huggingface_hub use (see docs/setup.md):
- HEAD/GET /{org}/{name}/resolve/{main|40-hex commit}/{path}: X-Repo-Commit, ETag/X-Linked-Etag (sha256),
  X-Linked-Size, Accept-Ranges; Range -> 206 + Content-Range; files marked `cdn` answer 302 to the CDN port
  with a signed URL (the CDN records whether an Authorization header reached it).
- Errors as JSON with X-Error-Code/X-Error-Message: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo
  (401 without a token, 403 with a token whose account has not accepted the licence), and 401
  "Invalid credentials in Authorization header" for an unknown token.
- GET /api/whoami-v2 and /api/models/{org}/{name}/auth-check (HfApi.whoami / HfApi.auth_check).
- Faults: drop the connection after N body bytes, 503/429 once (Retry-After), ignore Range, serve wrong
  bytes, 403 once from the CDN (expired signed URL), a 206 once for another range or with another file size
  in its Content-Range, a per-connection throughput cap, an error whose X-Error-Message echoes the
  Authorization header, no account API at all (a mirror), and bodies that stall after N bytes.
Every body byte sent is counted, so a test can prove what a resume fetched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BLOCK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_AUTH_CHECK = re.compile(r"^/api/models/([^/]+/[^/]+)/auth-check$")


@dataclass
class HubFile:
    repo: str
    path: str
    size: int
    sha256: str
    data: Path | None  # None: a declared-only file (served as zeros; for preflight tests)
    gated: bool = False
    cdn: bool = False


@dataclass
class Faults:
    drop_after: int | None = None  # the next body is cut after this many bytes (once)
    status_once: int | None = None  # the next byte GET answers this status (once)
    retry_after: str | None = "1"
    ignore_range: bool = False
    wrong_bytes: bool = False  # one byte in the middle of every file is flipped
    rate: float | None = None  # bytes per second per connection
    cdn_403_once: bool = False  # the next CDN GET answers 403 and every URL signed so far expires
    shift_range_once: int | None = None  # the next 206 serves (and names) a range this many bytes later
    total_size_once: int | None = None  # the next 206's Content-Range names a file of this size
    echo_auth_status: int | None = None  # byte GETs answer this status, echoing Authorization in X-Error-Message
    no_account_api: bool = False  # /api/* answers a bare 404, like a mirror without accounts (HF_ENDPOINT)
    stall_after: int | None = None  # every body stops sending (the connection stays open) after this many bytes
    stall_seconds: float = 30.0  # how long a stalled body waits before it is cut
    stall_once: bool = False  # the first body to stall turns stall_after off for the bodies after it


@dataclass
class Served:
    bytes: int = 0
    gets: int = 0
    active: int = 0  # bodies being sent right now
    by_path: dict[str, int] = field(default_factory=dict)


def _commit_for(repo: str) -> str:
    return hashlib.sha1(repo.encode()).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], HubFile] = {}
        self.tokens: dict[str, str] = {}  # token -> user name
        self.licences: set[tuple[str, str]] = set()  # (token, repo) that accepted the licence
        self.faults = Faults()
        self.served = Served()
        self.cdn_auth_seen: list[bool] = []
        self.log: list[tuple[str, str, str]] = []  # (role, method, path)
        self.lock = threading.Lock()
        self.closing = threading.Event()  # ends stalled bodies
        self._sig = 0
        self._valid_from = 0
        self.hub = self._start("hub")
        self.cdn = self._start("cdn")

    # -- setup --------------------------------------------------------------------------------------------
    def _start(self, role: str) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        server.role = role  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return server

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.hub.server_address[1]}"

    @property
    def cdn_origin(self) -> str:
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def add(self, repo: str, path: str, data: Path | None, *, size: int | None = None, sha256: str | None = None,
            gated: bool = False, cdn: bool = False) -> HubFile:
        if data is not None:
            size = data.stat().st_size
            sha256 = sha256 or hashlib.sha256(data.read_bytes()).hexdigest()
        assert size is not None and sha256 is not None
        entry = HubFile(repo, path, size, sha256, data, gated, cdn)
        self.files[(repo, path)] = entry
        return entry

    def quiet(self) -> bool:
        """No body is being sent (after a client was killed, its bodies fail on their next write)."""
        return self.served.active == 0

    def commit(self, repo: str) -> str:
        return _commit_for(repo)

    def close(self) -> None:
        self.closing.set()
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()

    # -- used by the handler -------------------------------------------------------------------------------
    def sign(self, entry: HubFile) -> str:
        with self.lock:
            self._sig += 1
            sig = self._sig
        return f"{self.cdn_origin}/cdn/{entry.sha256}?repo={entry.repo}&path={entry.path}&sig={sig}"

    def take_fault(self, name: str) -> object:
        with self.lock:
            value = getattr(self.faults, name)
            if value:
                setattr(self.faults, name, type(self.faults).__dataclass_fields__[name].default)
            return value

    def count(self, entry: HubFile, n: int) -> None:
        with self.lock:
            self.served.bytes += n
            self.served.by_path[entry.path] = self.served.by_path.get(entry.path, 0) + n


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1"

    @property
    def fake(self) -> FakeHub:
        return self.server.fake  # type: ignore[attr-defined]

    @property
    def role(self) -> str:
        return self.server.role  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # silence the default stderr log
        pass

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # -- routing --------------------------------------------------------------------------------------------
    def _dispatch(self, head: bool) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        with self.fake.lock:
            self.fake.log.append((self.role, self.command, path))
        if self.role == "cdn":
            return self._cdn(path, parse_qs(url.query), head)
        token = self._token()
        if token is not None and token not in self.fake.tokens:
            return self._error(401, None, "Invalid credentials in Authorization header")
        if path.startswith("/api/") and self.fake.faults.no_account_api:
            return self._json(404, {"error": "Not Found"})
        if path == "/api/whoami-v2":
            if token is None:
                return self._error(401, None, "Invalid credentials in Authorization header")
            return self._json(200, {"type": "user", "name": self.fake.tokens[token], "auth": {}})
        if match := _AUTH_CHECK.match(path):
            repo = match.group(1)
            if not self._repo_known(repo):
                return self._error(404, "RepoNotFound", "Repository not found")
            if not self._allowed(repo, token):
                return self._gated(repo, token)
            return self._json(200, {})
        if match := _RESOLVE.match(path):
            return self._resolve(*match.groups(), token=token, head=head)
        return self._error(404, None, "Not Found")

    def _token(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else None

    def _repo_known(self, repo: str) -> bool:
        return any(r == repo for r, _ in self.fake.files)

    def _allowed(self, repo: str, token: str | None) -> bool:
        gated = any(f.gated for (r, _), f in self.fake.files.items() if r == repo)
        return not gated or (token is not None and (token, repo) in self.fake.licences)

    def _gated(self, repo: str, token: str | None) -> None:
        status = 401 if token is None else 403
        self._error(status, "GatedRepo", f"Access to model {repo} is restricted. You must have access to it "
                    "and be authenticated to access it. Please log in.")

    def _resolve(self, repo: str, revision: str, file_path: str, token: str | None, head: bool) -> None:
        if not self._repo_known(repo):
            return self._error(404, "RepoNotFound", "Repository not found")
        if revision not in ("main", _commit_for(repo)):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        entry = self.fake.files.get((repo, file_path))
        if entry is None:
            return self._error(404, "EntryNotFound", f"{file_path} does not exist on \"{revision}\"")
        if not self._allowed(repo, token):
            return self._gated(repo, token)
        headers = {"X-Repo-Commit": _commit_for(repo), "X-Linked-Etag": f'"{entry.sha256}"',
                   "X-Linked-Size": str(entry.size), "ETag": f'"{entry.sha256}"', "Accept-Ranges": "bytes"}
        if entry.cdn:
            headers["Location"] = self.fake.sign(entry)
            self.send_response(302)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self._bytes(entry, head, headers)

    def _cdn(self, path: str, query: dict[str, list[str]], head: bool) -> None:
        with self.fake.lock:
            self.fake.cdn_auth_seen.append("authorization" in {k.lower() for k in self.headers})
        entry = next((f for f in self.fake.files.values() if path == f"/cdn/{f.sha256}"), None)
        if entry is None:
            return self._error(404, None, "NoSuchKey")
        sig = int(query.get("sig", ["0"])[0])
        if not head and self.fake.take_fault("cdn_403_once"):
            with self.fake.lock:
                self.fake._valid_from = self.fake._sig + 1
        if sig < self.fake._valid_from:
            return self._error(403, None, "Request has expired")
        return self._bytes(entry, head, {"ETag": f'"{entry.sha256}"', "Accept-Ranges": "bytes"})

    # -- answers ----------------------------------------------------------------------------------------------
    def _json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers)

    def _bytes(self, entry: HubFile, head: bool, headers: dict[str, str]) -> None:
        fake = self.fake
        if not head and (status := fake.faults.echo_auth_status):
            echoed = self.headers.get("authorization", "none")
            return self._error(int(status), None, f"bad request: got Authorization: {echoed}")
        if not head and (status := fake.take_fault("status_once")):
            extra = {"Retry-After": fake.faults.retry_after} if fake.faults.retry_after else {}
            return self._json(int(status), {"error": "try again later"}, extra)
        start, end, status = 0, entry.size, 200
        match = _RANGE.match(self.headers.get("range", ""))
        if match and not fake.faults.ignore_range:
            start = int(match.group(1))
            end = min(entry.size, int(match.group(2)) + 1) if match.group(2) else entry.size
            if start >= entry.size or start >= end:
                return self._error(416, None, "Range Not Satisfiable")
            status = 206
        total = entry.size
        if status == 206 and not head:
            start = min(end - 1, start + int(fake.take_fault("shift_range_once") or 0))  # type: ignore[call-overload]
            total = int(fake.take_fault("total_size_once") or total)  # type: ignore[call-overload]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{total}")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if head:
            return None
        with fake.lock:
            fake.served.gets += 1
        drop_after = fake.take_fault("drop_after")
        with fake.lock:
            fake.served.active += 1
        try:
            return self._body(entry, start, end, drop_after)  # type: ignore[arg-type]
        finally:
            with fake.lock:
                fake.served.active -= 1

    def _body(self, entry: HubFile, start: int, end: int, drop_after: int | None) -> None:
        fake = self.fake
        stall_after = fake.faults.stall_after
        if stall_after is not None:
            drop_after = stall_after if drop_after is None else min(drop_after, stall_after)
        plain = drop_after is None and not fake.faults.wrong_bytes and fake.faults.rate is None
        with contextlib.ExitStack() as stack:
            fh = stack.enter_context(entry.data.open("rb")) if entry.data is not None else None
            if plain and fh is not None:
                self._sendfile(entry, fh.fileno(), start, end)
                return
            pos, began, sent_here = start, time.monotonic(), 0
            flip_at = entry.size // 2
            while pos < end:
                n = min(BLOCK, end - pos)
                if drop_after is not None:
                    n = min(n, max(0, drop_after - sent_here))
                    if n == 0:
                        if stall_after is not None:  # silent, the connection open, until the fake closes
                            if fake.faults.stall_once:
                                fake.faults.stall_after = None
                            with contextlib.suppress(OSError):
                                self.wfile.flush()
                            fake.closing.wait(fake.faults.stall_seconds)
                        self._drop()
                        return
                data = bytearray(os.pread(fh.fileno(), n, pos) if fh is not None else bytes(n))
                if fake.faults.wrong_bytes and pos <= flip_at < pos + n:
                    data[flip_at - pos] ^= 0xFF
                try:
                    self.wfile.write(data)
                except OSError:
                    return
                fake.count(entry, n)
                pos, sent_here = pos + n, sent_here + n
                if fake.faults.rate:
                    ahead = sent_here / fake.faults.rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)

    def _sendfile(self, entry: HubFile, fd: int, start: int, end: int) -> None:
        """Zero-copy, like a real CDN edge; counted per call so a client that leaves early is counted right."""
        out, pos = self.connection.fileno(), start
        while pos < end:
            try:
                sent = os.sendfile(out, fd, pos, min(BLOCK * 16, end - pos))
            except OSError:
                return  # the client went away
            if sent == 0:
                return
            self.fake.count(entry, sent)
            pos += sent

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
