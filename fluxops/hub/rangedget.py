"""fluxops's own ranged HTTP byte stream: one `Range` request per call, redirects, retry classification.

Why not `hf_hub_download`: since huggingface_hub 1.18 its partial file has a per-process random name and is
deleted on failure or Ctrl-C (orphaned after kill -9), so a 12 GB download that dies restarts from zero; it
never checks the sha256; and its plain-HTTP path is a single stream. fluxops keeps huggingface_hub for what
it does well (URLs, metadata, auth headers, error mapping: see `fluxops.hub.client`) and streams the bytes itself.

Redirects are followed by hand so the token goes only to the Hub's own origin, never to the CDN host a
resolve URL redirects to. A signed CDN URL expires (about an hour on the real Hub): a 401/403/404/410 from a
host that is not the Hub means "resolve the URL again", which `ByteSource.refresh` does.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from fluxops.errors import FluxopsError
from fluxops.hub.client import Hub
from fluxops.hub.tokens import scrub

CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0
MAX_REDIRECTS = 5
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
EXPIRED_STATUSES = {401, 403, 404, 410}
# What a dropped connection or a stalled server looks like from requests/urllib3 while reading a body.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (requests.ConnectionError, requests.Timeout,
                                                   requests.exceptions.ChunkedEncodingError)


class RetryableError(Exception):
    """A failure worth retrying: dropped connection, timeout, 5xx, 429."""

    def __init__(self, reason: str, retry_after: float | None = None, throttled: bool = False):
        super().__init__(reason)
        self.retry_after = retry_after
        self.throttled = throttled


class ExpiredUrl(Exception):
    """The CDN refused a URL that worked before: resolve it again through the Hub."""


def _urllib3_errors() -> tuple[type[BaseException], ...]:
    import urllib3.exceptions as u3

    return (u3.ProtocolError, u3.ReadTimeoutError, u3.IncompleteRead, OSError)


READ_ERRORS = NETWORK_ERRORS + _urllib3_errors()
RETRYABLE: tuple[type[BaseException], ...] = (RetryableError, *READ_ERRORS)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse Retry-After (seconds or an HTTP date). The caller caps it (retries.py), and says so."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (now or time.time()))


def backoff_seconds(attempt: int, retry_after: float | None, base: float = 0.5, cap: float = 30.0) -> float:
    if retry_after is not None:
        return retry_after
    return min(cap, base * (2 ** max(0, attempt - 1)))


def host_of(url: str) -> str:
    """Scheme://host:port only: signed CDN URLs carry credentials in their query, never shown."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Opened:
    response: requests.Response
    url: str
    start: int  # first byte of the body in the file (0 when the server ignored Range)
    ranged: bool


class ByteSource:
    """Where one file's bytes come from right now; shared by all connections of a download."""

    def __init__(self, hub: Hub, location: str, resolve: Callable[[], str], read_timeout: float = READ_TIMEOUT):
        self.hub = hub
        self.read_timeout = read_timeout  # the stall timeout: this long without a byte drops the connection
        self._url = location
        self._resolve = resolve
        self._lock = threading.Lock()
        self.refreshes = 0

    @property
    def url(self) -> str:
        return self._url

    def refresh(self, failed_url: str) -> None:
        """Resolve again through the Hub (once, however many connections saw the same URL fail)."""
        with self._lock:
            if self._url == failed_url:
                self._url = self._resolve()
                self.refreshes += 1

    def open(self, session: requests.Session, start: int, end: int, size: int) -> Opened:
        """GET bytes [start, end) (end exclusive). Raises RetryableError, ExpiredUrl or FluxopsError."""
        url = self._url
        first = url
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Accept-Encoding": "identity", **self.hub.auth_headers(url)}
            if not (start == 0 and end == size):
                headers["Range"] = f"bytes={start}-{end - 1}"
            try:
                resp = session.get(url, headers=headers, stream=True, allow_redirects=False,
                                   timeout=(CONNECT_TIMEOUT, self.read_timeout))
            except NETWORK_ERRORS as exc:
                raise RetryableError(f"{host_of(url)}: {exc.__class__.__name__}") from exc
            if resp.is_redirect and "location" in resp.headers:
                url = urljoin(url, resp.headers["location"])
                resp.close()
                continue
            return self._classify(resp, url, first, start, end, size)
        raise FluxopsError("download.failed", f"too many redirects from {host_of(first)}")

    def _classify(self, resp: requests.Response, url: str, first: str, start: int, end: int,
                  size: int) -> Opened:
        status = resp.status_code
        if status == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
            if not match or int(match.group(1)) != start:
                resp.close()
                raise RetryableError(f"{host_of(url)}: 206 with Content-Range "
                                     f"{resp.headers.get('content-range')!r}, asked for byte {start}")
            if match.group(3) != "*" and int(match.group(3)) != size:
                resp.close()
                raise FluxopsError("hub.upstream_changed", f"{host_of(url)} now serves a {match.group(3)}-byte "
                                   f"file, the manifest pins {size}: upstream changed mid-download")
            return Opened(resp, url, start, True)
        if status == 200:
            return Opened(resp, url, 0, start == 0 and end == size)
        resp.close()
        if status in RETRY_STATUSES:
            raise RetryableError(f"{host_of(url)}: HTTP {status}",
                                 retry_after_seconds(resp.headers.get("retry-after")), throttled=status == 429)
        if status in EXPIRED_STATUSES and not self.hub.is_hub_url(url):
            raise ExpiredUrl(first)
        message = scrub(resp.headers.get("x-error-message") or resp.reason or "", self.hub.token)
        raise FluxopsError("download.failed", f"{host_of(url)} answered HTTP {status} ({message})")
