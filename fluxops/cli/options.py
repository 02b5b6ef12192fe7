"""Options shared by several commands: one definition each, so the name, help text and validation are the same
everywhere. A command that shows an option in a help panel of its own takes it from the `*_option()` factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (progress on stderr).")]
ModelsDirOpt = Annotated[Path | None, typer.Option(
    "--models-dir", help="ComfyUI's models folder (env FLUXOPS_MODELS_DIR; default <ComfyUI>/models).",
    file_okay=False)]
ComfyDirOpt = Annotated[Path | None, typer.Option(
    "--comfyui-dir", help="The ComfyUI folder (env FLUXOPS_COMFYUI_DIR).", file_okay=False)]
ManifestOpt = Annotated[Path | None, typer.Option(
    "--manifest", help="Model manifest TOML (env FLUXOPS_MANIFEST; default: the packaged flux-krea-turbo).",
    dir_okay=False)]
JobsOpt = Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Files processed at once.")]
ComfyPythonOpt = Annotated[Path | None, typer.Option(
    "--comfyui-python", help="ComfyUI's Python (env FLUXOPS_COMFYUI_PYTHON; default: venv, .venv or "
    "python_embeded next to ComfyUI).", dir_okay=False)]


def port_option(panel: str | None = None) -> Any:
    """`--port`, checked as a TCP port (1-65535) before anything runs."""
    return typer.Option("--port", min=1, max=65535, help="ComfyUI's port (env FLUXOPS_PORT; default 8188).",
                        rich_help_panel=panel)


def host_option(panel: str | None = None) -> Any:
    return typer.Option("--host", help="ComfyUI's address (env FLUXOPS_HOST; "
                        "default 127.0.0.1).", rich_help_panel=panel)


PortOpt = Annotated[int | None, port_option()]
HostOpt = Annotated[str | None, host_option()]
ListenOpt = Annotated[str | None, typer.Option(
    "--listen", help="Address(es) ComfyUI listens on (default 127.0.0.1; 0.0.0.0 = every interface, "
    "with no authentication).")]
ComfyArgOpt = Annotated[list[str] | None, typer.Option(
    "--comfy-arg", help="Pass an argument to ComfyUI (repeatable), e.g. --comfy-arg=--lowvram.")]
StartTimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=1, help="Seconds to wait for readiness.")]
ClusterOpt = Annotated[bool, typer.Option(
    "--cluster", help='Run on every GPU of the Ray cluster (needs pip install "fluxops\\[cluster]"; '
    "see docs/cluster.md).",
    rich_help_panel="Cluster")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="The Ray cluster to use with --cluster (default: RAY_ADDRESS, else a local Ray on this "
    "machine with all its GPUs).", rich_help_panel="Cluster")]


def config_flag(ctx: typer.Context) -> str | None:
    """The root `--config` file as an absolute path (sent to cluster nodes, which resolve their own Settings)."""
    root = ctx.find_root()
    config = (root.obj or {}).get("config") if root.obj else None
    return str(Path(config).expanduser().absolute()) if config else None
