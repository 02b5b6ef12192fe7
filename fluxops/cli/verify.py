"""`fluxops verify`."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxops.cli.app import app, build_settings, guarded
from fluxops.cli.options import ComfyDirOpt, JobsOpt, JsonOpt, ManifestOpt, ModelsDirOpt
from fluxops.console import Output, Text, human_bytes
from fluxops.errors import ExitCode

_STATE_STYLE = {"ok": "green", "missing": "red", "misplaced": "yellow", "wrong_size": "red",
                "malformed": "red", "hash_mismatch": "red", "unverified": "yellow"}


@app.command()
def verify(
    ctx: typer.Context,
    models_dir: ModelsDirOpt = None,
    comfyui_dir: ComfyDirOpt = None,
    manifest: ManifestOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Re-check every file, ignoring cached verdicts.")] = False,
    fix: Annotated[bool, typer.Option("--fix", help="Move misplaced files where the manifest says "
                                      "(never overwriting).")] = False,
    jobs: JobsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check the model files: present, where ComfyUI looks, right size, well-formed safetensors, right sha256."""
    out = Output("verify", json_mode=json_out)
    with guarded(out):
        from fluxops.models.hashing import VerifyCache
        from fluxops.models.layout import extra_yamls_for
        from fluxops.models.manifest import load_manifest
        from fluxops.models.verify import verify as run_verify

        settings = build_settings(ctx, models_dir=models_dir, comfyui_dir=comfyui_dir, manifest=manifest,
                                  jobs=jobs)
        spec = load_manifest(settings.manifest)
        root = settings.require_models_dir()
        cache = VerifyCache(settings.verify_cache_path)
        with out.byte_progress("hashing") as (set_total, advance):
            report = run_verify(spec, root, cache, extra_yamls=extra_yamls_for(settings.comfyui_dir),
                                full=full, fix=fix, parallel_files=settings.parallel_files, on_total=set_total,
                                on_progress=advance, on_note=out.note)
        out.emit(report.to_dict(), ok=report.ok)
        if not out.json_mode:
            rows: list[list[str | Text]] = []
            for f in report.files:
                state = Text(f.state.value, style=_STATE_STYLE[f.state.value])
                where = f.dest if f.location in (None, "models") else f"{f.dest} (found at {f.path})"
                note = f.detail or ("cached verdict" if f.checked_by == "cache" else f.checked_by or "")
                rows.append([state, where, human_bytes(f.expected_size), note])
            out.table(["state", "file", "size", "detail"], rows, title=f"{spec.name} in {root}")
            counts = ", ".join(f"{n} {state}" for state, n in report.counts().items())
            out.line(f"{counts} ({report.seconds:.2f} s)", style="green" if report.ok else "red")
        hints = sorted({f.hint for f in report.files if f.hint})
        for hint in hints:
            out.hint(hint)
        if not report.ok:
            raise typer.Exit(ExitCode.FAILURE)
