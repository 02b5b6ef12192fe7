"""ComfyUI's logging (app/logger.py): `%(message)s` lines, to stderr by default; with --log-stdout levels
below ERROR go to stdout. The last 300 entries are kept for GET /internal/logs[/raw]."""

from __future__ import annotations

import logging
import sys
from collections import deque
from datetime import datetime, timezone

ENTRIES: deque[dict[str, str]] = deque(maxlen=300)


class _BufferHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        ENTRIES.append({"t": datetime.now(timezone.utc).isoformat(), "m": self.format(record) + "\n"})


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def setup(log_stdout: bool, level: str = "INFO") -> None:
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    fmt = logging.Formatter("%(message)s")
    handlers: list[logging.Handler] = [_BufferHandler()]
    if log_stdout:
        out = logging.StreamHandler(sys.stdout)
        out.addFilter(_BelowError())
        err = logging.StreamHandler(sys.stderr)
        err.setLevel(logging.ERROR)
        handlers += [out, err]
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
