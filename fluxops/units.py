"""Byte counts as people read them: the one place fluxops formats sizes (core modules and the CLI alike)."""

from __future__ import annotations

MIB = 1024**2
GIB = 1024**3


def gib(n: int | float | None) -> str:
    """``23.6 GiB``; small amounts in MiB so 300 MB held by a browser does not read as ``0.3 GiB``."""
    if n is None:
        return "?"
    if abs(n) < GIB:
        return f"{n / 1024**2:.0f} MiB"
    return f"{n / GIB:.1f} GiB"


def human_bytes(n: float | None) -> str:
    """``512 B``, ``1.5 KiB`` ... ``2.0 TiB``: sizes in tables and progress lines."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
