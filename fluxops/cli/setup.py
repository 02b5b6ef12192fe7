"""`fluxops setup`: download, verify and place the manifest's files (resumable; see docs/setup.md)."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fluxops.cli.app import app, build_settings, guarded
from fluxops.cli.options import (
    ClusterOpt,
    ComfyDirOpt,
    JobsOpt,
    JsonOpt,
    ManifestOpt,
    ModelsDirOpt,
    RayAddressOpt,
    config_flag,
)
from fluxops.console import Output, Text, TransferBars, human_bytes
from fluxops.errors import ExitCode

if TYPE_CHECKING:
    from fluxops.cluster.pernode import NodeRow
    from fluxops.hub.tokens import ResolvedToken
    from fluxops.setup.run import FileOutcome, SetupEvents, SetupOptions, SetupReport

_ACTION_STYLE = {"present": "green", "placed": "green", "download": "cyan", "corrupt": "red", "failed": "red"}


def _events(out: Output, bars: TransferBars, token: str | None) -> SetupEvents:
    from fluxops.hub.tokens import scrub
    from fluxops.setup.run import SetupEvents

    class CliEvents(SetupEvents):
        def note(self, text: str) -> None:
            out.note(scrub(text, token))  # notes carry server text (errors, reasons): never the token

        def started(self, file_id: str, total: int, done: int) -> None:
            bars.add(file_id, file_id, total, done)
            resume = f", resuming at {human_bytes(done)}" if done else ""
            out.event(f"{file_id}: downloading {human_bytes(total - done)}{resume}")

        def advance(self, file_id: str, n: int) -> None:
            bars.advance(file_id, n)

        def finished(self, outcome: FileOutcome) -> None:
            if outcome.action == "placed":
                out.event(f"{outcome.id}: placed {outcome.dest} ({human_bytes(outcome.fetched)} fetched in "
                          f"{outcome.seconds:.1f} s)")
            elif outcome.error is not None:
                out.event(scrub(f"{outcome.id}: failed: {outcome.error.message}", token))

    return CliEvents()


def _render(out: Output, report: SetupReport) -> None:
    rows: list[list[str | Text]] = []
    for f in report.files:
        action = Text(f.action, style=_ACTION_STYLE.get(f.action, ""))
        if report.dry_run:
            rows.append([action, f.dest, f.state, f.source or "-", human_bytes(f.to_fetch),
                         human_bytes(f.resume_from) if f.resume_from else "-"])
        else:
            rows.append([action, f.dest, f.source or "-", human_bytes(f.fetched) if f.fetched else "-"])
    if report.dry_run:
        out.table(["plan", "file", "state", "source", "to fetch", "resume at"], rows, title="dry run: nothing "
                  "is changed")
        free = human_bytes(report.free_bytes) if report.free_bytes is not None else "-"
        out.line(f"total to fetch: {human_bytes(report.to_fetch)}; free at {report.models_dir}: {free}")
    else:
        out.table(["result", "file", "source", "fetched"], rows, title=f"models in {report.models_dir}")
        out.line("all files present and verified" if report.ok else "some files are not in place",
                 style="green" if report.ok else "red")


def _prune(out: Output, manifest_path: Path, root: Path, wait: bool) -> None:
    from fluxops.models.manifest import load_manifest
    from fluxops.setup.run import prune

    removed = prune(load_manifest(manifest_path), root, wait=wait, on_wait=out.note)
    out.emit({"removed": [{"path": str(p), "bytes": n} for p, n in removed]})
    for path, size in removed:
        out.line(f"removed {path} ({human_bytes(size)})")
    out.line(f"{len(removed)} partial file(s) removed, {human_bytes(sum(n for _, n in removed))} freed")


def _token(out: Output, flag: str | None) -> ResolvedToken:
    from fluxops.hub.tokens import resolve_token

    resolved = resolve_token(flag, os.environ, Path.cwd())
    for warning in resolved.warnings:
        out.warn(warning)
    if resolved.value:
        out.note(f"token {resolved.shown} from {resolved.source}")
    return resolved


def _setup_cluster(out: Output, ctx: typer.Context, flags: Mapping[str, object], token: ResolvedToken,
                   options: SetupOptions, ray_address: str | None) -> None:
    """The same setup on every GPU node of the Ray cluster (docs/cluster.md): one row per node."""
    from fluxops.cluster import runtime
    from fluxops.cluster.pernode import NodeCall, absolute_flags
    from fluxops.cluster.provision import setup_cluster

    address = runtime.resolve_address(ray_address, os.environ)
    call = NodeCall(absolute_flags(flags), config_flag(ctx))
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with runtime.connected(address) as ray:
        rows = setup_cluster(ray, call, token, options, lambda node, text: out.event(f"{node}: {text}"))
    ok = all(row.ok for row in rows)
    from fluxops.hub.tokens import scrub_data

    # Server text from every node is scrubbed of the token before it is shown, as on one box.
    out.emit(scrub_data({"address": address, "ok": ok, "nodes": [row.to_dict() for row in rows]}, token.value),
             ok=ok)
    _render_nodes(out, rows, options.dry_run)
    if not ok:
        raise typer.Exit(ExitCode.FAILURE)


def _render_nodes(out: Output, rows: list[NodeRow], dry_run: bool) -> None:
    table: list[list[str | Text]] = []
    for row in rows:
        data = row.data or {}
        files = data.get("files") or []
        placed = sum(1 for f in files if f["action"] in ("present", "placed"))
        if row.error is not None:
            detail = row.error["message"] + (f" (fix: {row.error['hint']})" if row.error.get("hint") else "")
        else:
            detail = "; ".join(f"{f['id']}: {f['error']['message']}" for f in files if f.get("error")) or (
                f"{placed} of {len(files)} files verified" if not dry_run
                else f"{human_bytes(int(data.get('to_fetch') or 0))} to fetch")
        result = Text("ok" if row.ok else "failed", style="green" if row.ok else "red")
        table.append([result, row.node.label, str(data.get("models_dir") or "-"),
                      human_bytes(int(data.get("fetched") or 0)), detail])
    out.table(["result", "node", "models dir", "fetched", "detail"], table, title="setup on every GPU node")
    bad = [row.node.label for row in rows if not row.ok]
    out.line(f"{len(rows) - len(bad)} of {len(rows)} node(s) verified" + (f"; failed: {', '.join(bad)}" if bad
             else ""), style="red" if bad else "green")


@app.command()
def setup(
    ctx: typer.Context,
    models_dir: ModelsDirOpt = None,
    comfyui_dir: ComfyDirOpt = None,
    manifest: ManifestOpt = None,
    jobs: JobsOpt = None,
    connections: Annotated[int | None, typer.Option(
        "--connections", min=1, help="HTTP connections per file, also the cap across files (env "
        "FLUXOPS_CONNECTIONS; default 8).")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="Hugging Face token (prefer HF_TOKEN: a command line is visible to other users).",
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    repair: Annotated[bool, typer.Option("--repair", help="Replace corrupt files (moved aside until the new "
                                         "copy verifies).")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Fail at once if another setup holds the "
                                          "models dir.")] = False,
    prune_partials: Annotated[bool, typer.Option("--prune-partials", help="Remove partial downloads no "
                                                 "manifest entry needs, then stop (waits for a running "
                                                 "setup, or fails with --no-wait).")] = False,
    json_out: JsonOpt = False,
    cluster: ClusterOpt = False,
    ray_address: RayAddressOpt = None,
) -> None:
    """Download the manifest's files from Hugging Face: resumable, sha256-verified, placed for ComfyUI."""
    out = Output("setup", json_mode=json_out)
    with guarded(out):
        from fluxops.hub.tokens import scrub_data, scrub_error
        from fluxops.models.manifest import load_manifest
        from fluxops.setup.run import SetupOptions, run_setup

        if cluster and prune_partials:
            raise typer.BadParameter("run --prune-partials on each node, without --cluster",
                                     param_hint="--prune-partials")
        flags = {"models_dir": models_dir, "comfyui_dir": comfyui_dir, "manifest": manifest, "jobs": jobs,
                 "connections": connections}
        options = SetupOptions(dry_run=dry_run, repair=repair, wait=not no_wait)
        if cluster:
            _setup_cluster(out, ctx, flags, _token(out, token), options, ray_address)
            return
        settings = build_settings(ctx, **flags)
        root = settings.require_models_dir()
        if prune_partials:
            _prune(out, settings.manifest, root, wait=not no_wait)
            return
        spec = load_manifest(settings.manifest)
        resolved = _token(out, token)
        # `kill` / `docker stop` / systemd: stop like Ctrl-C, so what arrived is recorded for the resume.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with out.transfer_bars() as bars:
            report = run_setup(settings, spec, resolved, options, _events(out, bars, resolved.value))
        out.emit(scrub_data(report.to_dict(), resolved.value), ok=report.ok)
        _render(out, report)
        problems = [f for f in report.files if f.error is not None]
        for f in problems:
            assert f.error is not None
            out.error(scrub_error(f.error, resolved.value))
        if not report.ok:
            raise typer.Exit(ExitCode.FAILURE)
