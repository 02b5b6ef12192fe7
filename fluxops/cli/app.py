"""The Typer app, its root options, and the wrapper every command runs its body in.

Commands stay thin: parse options, build Settings once, call one core function, render its result.
Heavy modules are imported inside the command functions so `fluxops --help` and a cached
`fluxops verify` start fast.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from fluxops import __version__
from fluxops.console import Output
from fluxops.errors import ExitCode, FluxopsError
from fluxops.settings import Settings, load_settings

app = typer.Typer(
    name="fluxops",
    help="Provision, verify, diagnose and run the FLUX.1 Krea + Turbo LoRA workflow in ComfyUI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a token must never appear in a traceback
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fluxops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="Config file (default: fluxops.toml in the "
                                                "user config dir; env FLUXOPS_CONFIG).", dir_okay=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    ctx.obj = {"config": config}


def _discover(cwd: Path, env: Mapping[str, str]) -> tuple[Path, str] | None:
    import sys

    from fluxops.comfy.discover import discover

    found = discover(cwd, env, sys.platform)
    return (found.path, found.where) if found is not None else None


def build_settings(ctx: typer.Context, **flags: Any) -> Settings:
    """Settings for a command; with no comfyui_dir given anywhere, a ComfyUI found in the usual places, said on
    stderr (once per command)."""
    root_ctx = ctx.find_root()
    config = (root_ctx.obj or {}).get("config") if root_ctx.obj else None
    settings = load_settings(flags, config=config, discover=_discover)
    if settings.discovered and not (root_ctx.obj or {}).get("discovery_said"):
        typer.echo(f"note: using the ComfyUI found at {settings.comfyui_dir} ({settings.discovered})", err=True)
        if root_ctx.obj is not None:
            root_ctx.obj["discovery_said"] = True
    return settings


@contextmanager
def guarded(out: Output) -> Iterator[None]:
    """Map expected failures to one line + fix + exit code; Ctrl-C to 130. Never a traceback."""
    try:
        yield
    except FluxopsError as exc:
        out.error(exc)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        out.interrupted("interrupted (Ctrl-C)")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
