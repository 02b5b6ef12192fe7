"""Byte counts as people read them, for check summaries built by core modules (console.py is for the CLI)."""

from __future__ import annotations

GIB = 1024**3


def gib(n: int | float | None) -> str:
    """``23.6 GiB``; small amounts in MiB so 300 MB held by a browser does not read as ``0.3 GiB``."""
    if n is None:
        return "?"
    if abs(n) < GIB:
        return f"{n / 1024**2:.0f} MiB"
    return f"{n / GIB:.1f} GiB"
