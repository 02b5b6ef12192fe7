"""The error registry, checked both ways: every raised code is registered, every registered code is raised."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fluxops.errors import REGISTRY, ExitCode, FluxopsError

SRC = Path(__file__).resolve().parents[1] / "fluxops"
# FluxopsError("code", ...) and ErrorSpec-free helpers that pass a code literal as first argument
RAISED = re.compile(r"""FluxopsError\(\s*["']([a-z0-9_.]+)["']""")


def _sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}


def test_every_raised_code_is_registered() -> None:
    raised = {code for text in _sources().values() for code in RAISED.findall(text)}
    assert raised, "the scan found no FluxopsError at all"
    assert sorted(raised - set(REGISTRY)) == []


def test_every_registered_code_is_used_somewhere() -> None:
    texts = [text for path, text in _sources().items() if path.name != "errors.py"]
    unused = [code for code in REGISTRY if not any(f'"{code}"' in t or f"'{code}'" in t for t in texts)]
    assert unused == []


def test_unregistered_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        FluxopsError("no.such.code", "x")


def test_registry_entries_are_complete() -> None:
    for code, spec in REGISTRY.items():
        assert re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", code), code
        assert spec.meaning
        assert spec.exit_code in (ExitCode.FAILURE, ExitCode.USAGE, ExitCode.INTERRUPTED)
