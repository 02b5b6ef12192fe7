"""The fluxops command line. Each command lives in its own module and registers itself on ``app``."""

from __future__ import annotations

from fluxops.cli import comfy as _comfy  # noqa: F401  (registers the command)
from fluxops.cli import config as _config  # noqa: F401
from fluxops.cli import doctor as _doctor  # noqa: F401
from fluxops.cli import generate as _generate  # noqa: F401
from fluxops.cli import maintain as _maintain  # noqa: F401
from fluxops.cli import setup as _setup  # noqa: F401
from fluxops.cli import verify as _verify  # noqa: F401
from fluxops.cli.app import app


def main() -> None:
    app(prog_name="fluxops")


__all__ = ["app", "main"]
