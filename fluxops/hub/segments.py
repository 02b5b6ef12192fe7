"""One file, several connections: fixed-size segments from a shared queue, written in place, hashed in order.

- The partial file is sized up front; each connection takes the next segment from the queue, asks for it
  with one Range request and writes what arrives at its offset (os.pwrite): segments never wait on others.
- A checkpoint thread records progress after at most CHECKPOINT_BYTES or CHECKPOINT_SECONDS (a kill -9 loses
  only what arrived since); every SYNC_SECONDS it fdatasyncs the part first (partial.py).
- A hasher thread (prefixhash.py) follows the contiguous written prefix and feeds sha256 (and blake3) from
  the page cache; on resume it re-hashes the kept prefix once, and a kept prefix that hashes wrong is
  discarded and fetched again.
- A 429 or repeated errors halve the connections; an expired CDN URL is resolved again; a server ignoring
  Range gets one stream from byte 0; stalls and retries are bounded (retries.py).
Memory: about connections x READ_CHUNK + HASH_CHUNK, whatever the file size.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from fluxops.errors import FluxopsError
from fluxops.hub.partial import Checkpointer, PartPaths, RangeSet, broken, discard, disk_full_error, load_done
from fluxops.hub.prefixhash import PrefixHasher
from fluxops.hub.rangedget import READ_TIMEOUT, RETRYABLE, ByteSource, ExpiredUrl, RetryableError, host_of
from fluxops.hub.retries import SegmentRetries

READ_CHUNK = 512 * 1024
CHECKPOINT_BYTES = 4 * 1024 * 1024  # record progress at least this often (cheap: no sync)
CHECKPOINT_SECONDS = 0.25
SYNC_SECONDS = 2.0  # and make it durable (fdatasync) this often
MAX_REFRESHES = 5
ERRORS_BEFORE_SLOWDOWN = 3
STEAL_AFTER_SECONDS = 1.0  # split a segment in flight only when it would take longer than this to finish
MIN_STEAL = 1024 * 1024


@dataclass(eq=False)
class _Cursor:
    """A segment being fetched: `end` may shrink when an idle connection takes over its second half."""

    pos: int
    end: int
    began: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.first = self.pos

    def seconds_left(self, now: float) -> float:
        elapsed, done = now - self.began, self.pos - self.first
        if done <= 0:
            return math.inf if elapsed > STEAL_AFTER_SECONDS else 0.0
        return (self.end - self.pos) * elapsed / done


class DownloadStopped(Exception):
    """The shared stop event was set (Ctrl-C): progress is checkpointed, the part is kept."""


@dataclass(frozen=True)
class Fetched:
    sha256: str
    blake3: str | None
    fetched_bytes: int  # bytes that came over the network in this run
    resumed_from: int  # bytes already on disk when this run began
    connections: int  # connections in use at the end (fewer after 429s)
    single_stream: bool  # the server ignored Range


class SegmentedDownload:
    def __init__(self, *, paths: PartPaths, size: int, sha256: str, source: ByteSource, connections: int,
                 segment_size: int, permits: threading.Semaphore, stop: threading.Event,
                 on_bytes: Callable[[int], None] = lambda n: None, with_blake3: bool = True,
                 on_note: Callable[[str], None] = lambda text: None, stall_timeout: float = READ_TIMEOUT):
        self.paths, self.size, self.sha256, self.source = paths, size, sha256, source
        self.segment_size, self.permits, self.stop = max(1, segment_size), permits, stop
        self.on_bytes, self.on_note, self.with_blake3 = on_bytes, on_note, with_blake3
        self.allowed = max(1, connections)
        self.stall_timeout = stall_timeout
        self._lock = threading.Condition()
        self._queue: collections.deque[tuple[int, int]] = collections.deque()
        self._written = RangeSet()
        self._abort = threading.Event()
        self._error: BaseException | None = None
        self._fetched = 0
        self._since_checkpoint = 0
        self._checkpoint_due = threading.Event()
        self._consecutive_errors = 0
        self._single_stream = False
        self._fd = -1
        self._workers: list[threading.Thread] = []
        self._active: set[_Cursor] = set()
        self.steals = 0

    # -- public ------------------------------------------------------------------------------------------
    @property
    def fetched_bytes(self) -> int:
        return self._fetched

    def run(self) -> Fetched:
        """Fetch what is missing and check the sha256. A resumed partial whose bytes do not hash right is the
        local copy's fault (changed on disk, or a state file that lied), not the server's: it is discarded and
        the file fetched once more from byte 0; only a fresh download that mismatches blames the server."""
        fetched = self._attempt()
        if fetched.sha256 != self.sha256 and fetched.resumed_from:
            discard(self.paths)
            self.on_note("the partial download kept from an earlier run did not hold the right bytes (changed on "
                         "disk, or its state file was wrong); discarded, fetching the file again")
            fetched = self._attempt()
        if fetched.sha256 != self.sha256:
            discard(self.paths)  # wrong bytes are worth nothing: the next run starts clean
            raise FluxopsError("download.hash_mismatch", f"{host_of(self.source.url)} served bytes with sha256 "
                               f"{fetched.sha256}, expected {self.sha256}; nothing was placed")
        return fetched

    def _attempt(self) -> Fetched:
        """One pass over what the partial lacks (a pass that raised is never followed by another)."""
        self._abort.clear()  # set by the previous pass's end
        self._single_stream = False
        try:  # the part and its state file: a full disk or a lost permission is an error, not a traceback
            self.paths.part.parent.mkdir(parents=True, exist_ok=True)
            if broken(self.paths):
                self.on_note("the partial download is not a plain file; discarded, fetching it again")
                discard(self.paths)
            done = load_done(self.paths, self.size) if self.paths.part.exists() else RangeSet()
            resumed_from = done.covered
            self._written = done.copy()
            for start, end in done.missing(self.size):
                for seg_start in range(start, end, self.segment_size):
                    self._queue.append((seg_start, min(end, seg_start + self.segment_size)))
            self._fd = os.open(self.paths.part, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            try:
                os.ftruncate(self._fd, self.size)
                checkpointer = Checkpointer(self.paths, self._fd, self.size, done)
                if not resumed_from:
                    checkpointer.sync(self._written.copy())
                digests = self._run_threads(checkpointer)
            finally:
                os.close(self._fd)
        except OSError as exc:
            raise self._write_error(exc) from exc
        return Fetched(digests[0], digests[1], self._fetched, resumed_from, self.allowed, self._single_stream)

    # -- threads ----------------------------------------------------------------------------------------
    def _run_threads(self, checkpointer: Checkpointer) -> tuple[str, str | None]:
        missing = sum(end - start for start, end in self._queue)
        count = min(self.allowed, max(1, len(self._queue), missing // MIN_STEAL))  # small tails split too
        self._workers = workers = [threading.Thread(target=self._guard, args=(self._worker, i), daemon=True,
                                                    name=f"fluxops-seg-{i}") for i in range(count)]
        digest: list[tuple[str, str | None]] = []
        hasher = threading.Thread(target=self._guard, args=(self._hash_loop, digest), daemon=True)
        tickers = [threading.Thread(target=fn, args=(checkpointer,), daemon=True)
                   for fn in (self._checkpoint_loop, self._sync_loop)]
        for thread in (*workers, hasher, *tickers):
            thread.start()
        for thread in (*workers, hasher):
            thread.join()
        self._checkpoint_due.set()
        self._abort.set()  # ends the tickers
        for thread in tickers:
            thread.join()
        if self._error is not None or self.stop.is_set() or not digest:
            with contextlib.suppress(OSError):  # a full disk refuses the record too; the error below says why
                checkpointer.sync(self._snapshot())
            if self._error is not None:
                raise self._error
            if not self.stop.is_set():  # every connection ended but bytes are missing: never expected
                raise FluxopsError("download.failed", f"{self.paths.part}: the connections ended with "
                                   f"{self.size - self._snapshot().covered} bytes still missing (kept for a rerun)")
            raise DownloadStopped(f"{checkpointer.durable_bytes} bytes kept")
        os.fsync(self._fd)
        return digest[0]

    def _guard(self, fn: Callable[..., None], arg: object) -> None:
        try:
            fn(arg)
        except BaseException as exc:  # handed to the caller's thread by _run_threads
            with self._lock:
                if self._error is None:
                    self._error = exc
                self._lock.notify_all()
            self._abort.set()

    def _halted(self) -> bool:
        return self.stop.is_set() or self._abort.is_set()

    def _snapshot(self) -> RangeSet:
        with self._lock:
            return self._written.copy()

    def _checkpoint_loop(self, checkpointer: Checkpointer) -> None:
        last = -1
        while not self._abort.is_set():
            self._checkpoint_due.wait(CHECKPOINT_SECONDS)
            self._checkpoint_due.clear()
            snapshot = self._snapshot()
            if snapshot.covered != last and snapshot.covered < self.size:
                with contextlib.suppress(OSError):  # a failed checkpoint only costs resume precision
                    checkpointer.record(snapshot)
                last = snapshot.covered

    def _sync_loop(self, checkpointer: Checkpointer) -> None:
        """In its own thread: an fdatasync can take a while and records must go on meanwhile."""
        while not self._abort.wait(SYNC_SECONDS):
            snapshot = self._snapshot()
            if snapshot.covered < self.size:
                with contextlib.suppress(OSError):
                    checkpointer.sync(snapshot)

    def _take(self, index: int) -> tuple[int, int] | None:
        """The next queued segment (halved near the end of the queue); when none is left, the second half
        of a segment in flight that would take over STEAL_AFTER_SECONDS more (a slow or stalled
        connection), waiting for one while there are candidates."""
        with self._lock:
            while index < self.allowed and not self._halted() and not self._single_stream:
                if self._queue:
                    return self._split_tail(*self._queue.popleft())
                now = time.monotonic()
                candidates = [c for c in self._active if c.end - c.pos >= 2 * MIN_STEAL]
                if not candidates:
                    return None
                slowest = max(candidates, key=lambda c: c.seconds_left(now))
                if slowest.seconds_left(now) >= STEAL_AFTER_SECONDS:
                    mid = slowest.pos + (slowest.end - slowest.pos) // 2
                    stolen = (mid, slowest.end)
                    slowest.end = mid
                    self.steals += 1
                    return stolen
                self._lock.wait(STEAL_AFTER_SECONDS / 4)  # closing a fast connection early wastes bytes
            return None

    def _split_tail(self, start: int, end: int) -> tuple[int, int]:
        """Near the end of the queue, take half and leave half, so every connection keeps a share."""
        if len(self._queue) < self.allowed and end - start >= 2 * MIN_STEAL:
            mid = start + (end - start) // 2
            self._queue.appendleft((mid, end))
            return start, mid
        return start, end

    def _give_back(self, start: int, end: int) -> None:
        if end > start:
            with self._lock:
                self._queue.appendleft((start, end))

    def _worker(self, index: int) -> None:
        session = requests.Session()
        try:
            while (segment := self._take(index)) is not None:
                with self.permits:
                    self._fetch_segment(session, *segment)
        finally:
            session.close()

    def _record(self, start: int, n: int) -> None:
        with self._lock:
            self._written.add(start, start + n)
            self._fetched += n
            self._since_checkpoint += n
            if self._since_checkpoint >= CHECKPOINT_BYTES:
                self._since_checkpoint = 0
                self._checkpoint_due.set()
            self._lock.notify_all()
        self.on_bytes(n)

    def _fetch_segment(self, session: requests.Session, start: int, end: int) -> None:
        cursor = _Cursor(start, end)
        with self._lock:
            self._active.add(cursor)
        try:
            self._fetch_cursor(session, cursor)
        finally:
            with self._lock:
                self._active.discard(cursor)

    def _fetch_cursor(self, session: requests.Session, cursor: _Cursor) -> None:
        retries, refreshes = self._retries(), 0
        while cursor.pos < cursor.end:
            if self._single_stream:
                return  # the single stream rewrites everything from byte 0
            if self._halted():
                self._give_back(cursor.pos, cursor.end)
                return
            before = cursor.pos
            try:
                opened = self.source.open(session, cursor.pos, cursor.end, self.size)
                if not opened.ranged and not (cursor.pos == 0 and cursor.end == self.size):
                    self._become_single_stream(session, opened.response)
                    return
                self._stream(opened.response, cursor)
                with self._lock:
                    self._consecutive_errors = 0
            except ExpiredUrl as exc:
                refreshes += 1
                if refreshes > MAX_REFRESHES:
                    raise FluxopsError("download.failed", f"{host_of(str(exc))} keeps refusing the download "
                                       "URL, even freshly resolved") from exc
                self.on_note(f"download URL refused by {host_of(str(exc))}; resolving it again")
                self.source.refresh(str(exc))
            except RETRYABLE as exc:
                wait = retries.failed(exc, progressed=cursor.pos > before)
                self._on_failure(exc)
                self.stop.wait(wait)

    def _retries(self) -> SegmentRetries:
        return SegmentRetries(lambda: host_of(self.source.url), self.stall_timeout, self.on_note)

    def _on_failure(self, exc: BaseException) -> None:
        with self._lock:
            self._consecutive_errors += 1
            slow_down = getattr(exc, "throttled", False) or self._consecutive_errors >= ERRORS_BEFORE_SLOWDOWN
            if slow_down and self.allowed > 1:
                self.allowed = max(1, self.allowed // 2)
                self._consecutive_errors = 0
                self.on_note(f"{exc}: down to {self.allowed} connection(s)")

    def _stream(self, response: requests.Response, cursor: _Cursor, whole: bool = False) -> None:
        """Write the body at its offset, advancing the cursor as bytes land (also when the read fails)."""
        with contextlib.closing(response):
            raw = response.raw
            while cursor.pos < cursor.end:
                if self._halted() or (self._single_stream and not whole):
                    return
                want = min(READ_CHUNK, cursor.end - cursor.pos)
                if want <= 0:
                    return  # another connection took over the rest of this segment
                data = raw.read(want)
                if not data:
                    raise RetryableError(f"{host_of(response.url)}: connection closed at byte {cursor.pos}")
                self._write(data, cursor.pos)
                cursor.pos += len(data)

    def _write(self, data: bytes, offset: int) -> None:
        view, written = memoryview(data), 0
        try:
            while written < len(view):  # a short write (the disk filled up) is followed by the error (ENOSPC)
                n = os.pwrite(self._fd, view[written:], offset + written)
                if n == 0:
                    raise FluxopsError("download.write_failed", f"short write to {self.paths.part}")
                written += n
        except OSError as exc:
            raise self._write_error(exc) from exc
        self._record(offset, written)

    def _write_error(self, exc: OSError) -> FluxopsError:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return FluxopsError("download.write_failed", f"cannot write {self.paths.part}: {exc.strerror}")
        return disk_full_error(self.paths.part.parent, self.size - self._snapshot().covered)

    def _become_single_stream(self, session: requests.Session, response: requests.Response) -> None:
        """The server ignored Range (200 with the whole file): one stream from byte 0 does it all."""
        with self._lock:
            first = not self._single_stream
            self._single_stream = True  # other connections stop at their next chunk
            self._queue.clear()
            self.allowed = 1
        if not first:
            response.close()
            return
        self.on_note(f"{host_of(response.url)} ignores Range requests: one stream from the start")
        retries = self._retries()
        current: requests.Response | None = response
        while True:
            cursor = _Cursor(0, self.size)
            try:
                current = current or self._reopen_whole(session)
                self._stream(current, cursor, whole=True)
                return
            except RETRYABLE as exc:
                current = None
                wait = retries.failed(exc, progressed=cursor.pos > 0)
                self._on_failure(exc)
                if self.stop.wait(wait):
                    return

    def _reopen_whole(self, session: requests.Session) -> requests.Response:
        for _ in range(MAX_REFRESHES):
            try:
                return self.source.open(session, 0, self.size, self.size).response
            except ExpiredUrl as exc:
                self.source.refresh(str(exc))
        raise FluxopsError("download.failed", f"{host_of(self.source.url)} keeps refusing the download URL")

    def _hash_loop(self, out: list[tuple[str, str | None]]) -> None:
        hasher = PrefixHasher(self._fd, self.size, self.paths.part, with_blake3=self.with_blake3, cond=self._lock,
                              prefix_end=lambda: self._written.prefix_end(),
                              give_up=lambda: self._halted() or self._workers_gone())
        digests = hasher.run()
        if digests is not None:
            out.append(digests)

    def _workers_gone(self) -> bool:
        return not any(t.is_alive() for t in self._workers)

