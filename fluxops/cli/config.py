"""`fluxops config`: the effective settings and where each came from."""

from __future__ import annotations

import typer

from fluxops.cli.app import app, build_settings, guarded
from fluxops.cli.options import ComfyDirOpt, JsonOpt, ManifestOpt, ModelsDirOpt
from fluxops.console import Output


@app.command()
def config(
    ctx: typer.Context,
    models_dir: ModelsDirOpt = None,
    comfyui_dir: ComfyDirOpt = None,
    manifest: ManifestOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show every setting's effective value and where it came from (flag, environment, config file, default)."""
    out = Output("config", json_mode=json_out)
    with guarded(out):
        settings = build_settings(ctx, models_dir=models_dir, comfyui_dir=comfyui_dir, manifest=manifest)
        rows = settings.shown()
        out.emit({name: {"value": value or None, "source": source} for name, value, source in rows})
        out.table(["setting", "value", "from"], [list(r) for r in rows])
