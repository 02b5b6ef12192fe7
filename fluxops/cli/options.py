"""Options shared by several commands (one definition each, so help texts stay the same everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
