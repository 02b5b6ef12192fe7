"""`fluxops maintain` (the monthly job), `maintain history` and `maintain schedule`."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxops.cli.app import app, build_settings, guarded
from fluxops.cli.options import ComfyDirOpt, JsonOpt, ManifestOpt, ModelsDirOpt
from fluxops.console import Output, status_mark

maintain_app = typer.Typer(help="The monthly maintenance job, its history and its schedule.",
                           invoke_without_command=True, no_args_is_help=False)
app.add_typer(maintain_app, name="maintain")


@maintain_app.callback()
def maintain(
    ctx: typer.Context,
    models_dir: ModelsDirOpt = None,
    comfyui_dir: ComfyDirOpt = None,
    manifest: ManifestOpt = None,
    online: Annotated[bool, typer.Option("--online", help="Fetch ComfyUI's upstream and check the token "
                                         "online first.")] = False,
    health_check: Annotated[bool, typer.Option("--health-check/--no-health-check",
                                               help="Run the end-to-end image check.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing when all is well (for cron, which "
                                        "mails any output).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """The monthly job: re-verify files, clean up, doctor, ComfyUI updates, GPU health, the health check.

    Exits 0 when all is well and 1 when something needs a person, with a short summary on stdout.
    """
    if ctx.invoked_subcommand is not None:
        return
    out = Output("maintain", json_mode=json_out)
    with guarded(out):
        from fluxops.doctor.result import CheckResult
        from fluxops.maintain.run import MaintainOptions, run_maintain

        settings = build_settings(ctx, models_dir=models_dir, comfyui_dir=comfyui_dir, manifest=manifest)
        progress = out.note if not quiet else (lambda _t: None)

        def show(finding: CheckResult) -> None:
            mark, _style = status_mark(finding.status.value)
            progress(f"{mark} {finding.id}: {finding.summary}")

        report = run_maintain(settings, MaintainOptions(online=online, health_check=health_check),
                              on_finding=show, on_note=progress)
        out.emit(report.to_dict(), ok=report.ok)
        if not out.json_mode and not (quiet and report.ok):
            for line in report.summary_lines():
                out.line(line)
            if not report.ok:
                out.line("see `fluxops maintain history` for the trend", style="dim")
        if not report.ok:
            raise typer.Exit(report.exit_code)


@maintain_app.command("history")
def history(
    ctx: typer.Context,
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="Show the last N runs.")] = 12,
    json_out: JsonOpt = False,
) -> None:
    """Show the trend of past maintenance runs: date, result, seconds per image, warnings."""
    out = Output("maintain history", json_mode=json_out)
    with guarded(out):
        from fluxops.maintain.history import read_history

        settings = build_settings(ctx)
        entries = read_history(settings.maintain_dir)[-last:]
        out.emit([e.__dict__ for e in entries])
        if not entries:
            out.line("no maintenance run recorded yet: run `fluxops maintain`")
            return
        rows = [[e.started_at, "ok" if e.ok else f"attention (exit {e.exit_code})",
                 f"{e.seconds_per_image:.2f}" if e.seconds_per_image else "-", str(e.warnings), str(e.failures)]
                for e in entries]
        out.table(["date", "result", "s/image", "warnings", "failures"], rows)


@maintain_app.command("schedule")
def schedule(
    ctx: typer.Context,
    print_: Annotated[bool, typer.Option("--print", help="Show the job without installing it.")] = False,
    install: Annotated[bool, typer.Option("--install", help="Install the monthly job (idempotent).")] = False,
    uninstall: Annotated[bool, typer.Option("--uninstall", help="Remove exactly what --install added.")] = False,
    use_systemd: Annotated[bool, typer.Option("--systemd", help="A systemd user timer instead of crontab.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show, install or remove the monthly `fluxops maintain` job (crontab, systemd user timer, or schtasks)."""
    if sum((print_, install, uninstall)) > 1:
        raise typer.BadParameter("choose one of --print, --install, --uninstall")
    out = Output("maintain schedule", json_mode=json_out)
    with guarded(out):
        from fluxops.maintain.schedule import manage

        action = "install" if install else "uninstall" if uninstall else "print"
        settings = build_settings(ctx)
        extra = ["--config", str(settings.config_file)] if settings.config_file else []
        result = manage(action, use_systemd, extra)
        out.emit(result.__dict__)
        if action == "print":
            out.line(result.text)
        elif action == "install":
            out.line(("installed" if result.changed else "already installed, unchanged") + f" ({result.location}):")
            out.line(result.text)
        else:
            out.line(f"removed from {result.location}" if result.changed else "nothing to remove")
