"""How long one segment may keep failing, and how long to wait before each retry.

Three limits, so that no server can park a download: attempts in a row without a byte (a dead source),
stalls (a connection that sends a little then nothing; each costs one stall timeout), and failures in all
(a source that drops the connection over and over, even if each try moves a little). A server's Retry-After
is honoured up to the stall timeout and the shortening is said, once per segment.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import requests

from fluxops.errors import FluxopsError
from fluxops.hub.rangedget import backoff_seconds

MAX_ATTEMPTS = 8  # consecutive failures of one segment without a byte of progress
MAX_STALLS = 3  # stalls of one segment, progress or not
MAX_FAILURES = 24  # failures of one segment in all


def is_stall(exc: BaseException) -> bool:
    """A read that waited the whole stall timeout for a byte (the connection is open and silent)."""
    import urllib3.exceptions as u3

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (requests.Timeout, u3.ReadTimeoutError, socket.timeout, TimeoutError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class SegmentRetries:
    def __init__(self, where: Callable[[], str], stall_timeout: float, on_note: Callable[[str], None]):
        self.where, self.stall_timeout, self.on_note = where, stall_timeout, on_note
        self.attempts = self.stalls = self.failures = 0
        self._said_cap = False

    def failed(self, exc: BaseException, progressed: bool) -> float:
        """Count one failure; the seconds to wait before the next try. Raises download.failed past a limit."""
        self.failures += 1
        self.attempts = 1 if progressed else self.attempts + 1
        if is_stall(exc):
            self.stalls += 1
            self.on_note(f"{self.where()}: no byte for {self.stall_timeout:g} s; the stalled connection is "
                         "dropped and the rest of its segment asked for again")
        if self.stalls > MAX_STALLS:
            raise FluxopsError("download.failed", f"{self.where()}: the connection stalled {self.stalls} times on "
                               f"one segment (a little, then no byte for {self.stall_timeout:g} s); what arrived is "
                               "kept") from exc
        if self.attempts > MAX_ATTEMPTS:
            raise FluxopsError("download.failed", f"{self.where()}: {exc} ({MAX_ATTEMPTS} attempts in a row "
                               "without progress)") from exc
        if self.failures > MAX_FAILURES:
            raise FluxopsError("download.failed", f"{self.where()}: {exc} ({MAX_FAILURES} failures of one "
                               "segment, even with some progress each time)") from exc
        return self._wait(getattr(exc, "retry_after", None))

    def _wait(self, retry_after: float | None) -> float:
        if retry_after is not None and retry_after > self.stall_timeout:
            if not self._said_cap:
                self.on_note(f"{self.where()} asks to wait {retry_after:g} s (Retry-After); waiting "
                             f"{self.stall_timeout:g} s at most (FLUXOPS_STALL_TIMEOUT)")
                self._said_cap = True
            retry_after = self.stall_timeout
        return backoff_seconds(self.attempts, retry_after)
