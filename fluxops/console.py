"""The only module that imports rich: human output, JSON output, progress, hints.

Rules: with --json, stdout carries exactly one JSON document and nothing else; progress, notes and hints
go to stderr. Text that comes from outside (file names, server messages) is printed as plain text, never
interpreted as markup.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fluxops.errors import FluxopsError
from fluxops.units import human_bytes

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

SCHEMA = "fluxops/1"
STYLES = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim", "info": "cyan"}
MARKS = {"ok": "[✓]", "warn": "[!]", "fail": "[✗]", "skip": "[-]"}  # flutter doctor's marks, one per status


def status_mark(status: str) -> tuple[str, str]:
    """The mark and the colour of a check status (`ok`, `warn`, `fail`, `skip`): doctor's checks, maintain's
    findings."""
    return MARKS[status], STYLES[status]


def envelope(command: str, ok: bool, data: Any = None, error: FluxopsError | None = None) -> dict[str, Any]:
    """The versioned JSON document every `--json` command prints."""
    doc: dict[str, Any] = {"schema": SCHEMA, "command": command, "ok": ok}
    if error is not None:
        doc["error"] = error.to_dict()
    if error is None or data is not None:  # a failure may still report what was done (generate's saved images)
        doc["data"] = data
    return doc


class Output:
    def __init__(self, command: str, json_mode: bool = False, verbose: bool = False):
        self.command = command
        self.json_mode = json_mode
        self.verbose = verbose
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self._emitted = False

    @property
    def interactive(self) -> bool:
        """Progress bars only for a person at a terminal, never in JSON mode."""
        return not self.json_mode and self.err.is_terminal

    # -- results ---------------------------------------------------------------------------------------
    def emit(self, data: Any, ok: bool = True) -> None:
        """Print the JSON document (JSON mode only; human renderers print their own view)."""
        if self.json_mode and not self._emitted:
            sys.stdout.write(json.dumps(envelope(self.command, ok, data), indent=2, default=str) + "\n")
            sys.stdout.flush()
            self._emitted = True

    def line(self, text: str, style: str | None = None) -> None:
        if not self.json_mode:
            self.out.print(Text(text, style=style or ""))

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[str | Text]], title: str | None = None,
              styles: Sequence[str | None] | None = None) -> None:
        if self.json_mode:
            return
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for col in columns:
            table.add_column(col, overflow="fold")
        for i, row in enumerate(rows):
            style = styles[i] if styles else None
            table.add_row(*[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row],
                          style=style or "")
        self.out.print(table)

    # -- stderr ------------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.err.print(Text(text, style="dim" if not self.verbose else ""))

    def warn(self, text: str) -> None:
        self.err.print(Text("warning: ", style="yellow bold") + Text(text))

    def hint(self, command: str) -> None:
        self.err.print(Text("  fix: ", style="cyan") + Text(command))

    def event(self, text: str) -> None:
        """One line per event when there is no progress bar (JSON mode, pipes, cron)."""
        if not self.interactive:
            self.err.print(Text(text), highlight=False)

    def error(self, exc: FluxopsError, data: Any = None) -> None:
        if self.json_mode and not self._emitted:
            sys.stdout.write(json.dumps(envelope(self.command, False, data, error=exc), indent=2, default=str)
                             + "\n")
            self._emitted = True
        self.err.print(Text("error: ", style="red bold") + Text(exc.message))
        if exc.hint:
            self.hint(exc.hint)

    def interrupted(self, text: str = "interrupted") -> None:
        self.err.print(Text(text, style="yellow"))

    # -- progress ------------------------------------------------------------------------------------
    def _byte_bars(self, transient: bool) -> Progress:
        """A rich Progress for byte counts: description, bar, done/total, speed, time left."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                        TransferSpeedColumn(), TimeRemainingColumn(), console=self.err, transient=transient)

    @contextmanager
    def byte_progress(self, description: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
        """Yields (set_total, advance). A bar on a terminal; nothing otherwise. Thread-safe."""
        if not self.interactive:
            yield (lambda _n: None), (lambda _n: None)
            return
        lock = threading.Lock()
        with self._byte_bars(transient=True) as bar:
            task = bar.add_task(escape(description), total=None)

            def set_total(n: int) -> None:
                bar.update(task, total=n)

            def advance(n: int) -> None:
                with lock:
                    bar.advance(task, n)

            yield set_total, advance

    @contextmanager
    def transfer_bars(self) -> Iterator[TransferBars]:
        """One bar per item plus a total (bytes, speed, ETA) on a terminal; a silent stand-in otherwise."""
        if not self.interactive:
            yield TransferBars(None)
            return
        with self._byte_bars(transient=False) as bar:
            yield TransferBars(bar)

    @contextmanager
    def step_progress(self, description: str) -> Iterator[Callable[..., None]]:
        """Yields update(description=None, completed=None, total=None): a bar of steps with the elapsed time
        on a terminal; nothing otherwise (callers print events with ``event`` instead)."""
        if not self.interactive:
            yield lambda **_kw: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=self.err, transient=True) as bar:
            task = bar.add_task(escape(description), total=None)

            def update(description: str | None = None, completed: float | None = None,
                       total: float | None = None) -> None:
                changes: dict[str, Any] = {}
                if description is not None:
                    changes["description"] = escape(description)
                if total is not None:
                    changes["total"] = total
                if completed is not None:
                    changes["completed"] = completed
                bar.update(task, **changes)

            yield update

    @contextmanager
    def live_lines(self) -> Iterator[Callable[[Sequence[str]], None]]:
        """Yields show(lines): the lines redrawn in place on a terminal (a status board, e.g. one line per
        worker); nothing otherwise (callers print events with ``event`` instead)."""
        if not self.interactive:
            yield lambda _lines: None
            return
        from rich.console import Group
        from rich.live import Live

        with Live(console=self.err, refresh_per_second=4, transient=True) as live:

            def show(lines: Sequence[str]) -> None:
                live.update(Group(*(Text(line) for line in lines)))

            yield show


class TransferBars:
    """Thread-safe handle on several byte bars and their total (``progress`` None: does nothing)."""

    def __init__(self, progress: Progress | None):
        self._bars = (progress, progress.add_task("total", total=0)) if progress is not None else None
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._total_bytes = 0

    def add(self, key: str, description: str, total: int, completed: int = 0) -> None:
        if self._bars is None:
            return
        progress, total_task = self._bars
        with self._lock:
            self._tasks[key] = progress.add_task(escape(description), total=total, completed=completed)
            self._total_bytes += total
            progress.update(total_task, total=self._total_bytes, advance=completed)

    def advance(self, key: str, n: int) -> None:
        if self._bars is None or key not in self._tasks:
            return
        progress, total_task = self._bars
        with self._lock:
            progress.advance(self._tasks[key], n)
            progress.advance(total_task, n)


__all__ = ["MARKS", "STYLES", "Output", "Text", "TransferBars", "envelope", "escape", "human_bytes", "status_mark"]
