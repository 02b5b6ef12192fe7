"""`fluxops comfy start|stop|status|logs`: run ComfyUI in the background."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fluxops.cli.app import app, build_settings, guarded
from fluxops.cli.options import ComfyDirOpt, JsonOpt, ManifestOpt, ModelsDirOpt
from fluxops.console import Output, human_bytes
from fluxops.errors import ExitCode

comfy_app = typer.Typer(
    name="comfy", help="Run ComfyUI in the background: start, stop, status, logs.", no_args_is_help=True
)
app.add_typer(comfy_app, name="comfy")

ComfyPythonOpt = Annotated[
    Path | None,
    typer.Option(
        "--comfyui-python",
        help="ComfyUI's Python (env FLUXOPS_COMFYUI_PYTHON; default: venv, .venv or "
        "python_embeded next to ComfyUI).",
        dir_okay=False,
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option("--port", min=1, max=65535, help="ComfyUI's port (env FLUXOPS_PORT; default 8188)."),
]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    return " ".join([*parts, f"{secs}s"])


@comfy_app.command()
def start(
    ctx: typer.Context,
    comfyui_dir: ComfyDirOpt = None,
    comfyui_python: ComfyPythonOpt = None,
    models_dir: ModelsDirOpt = None,
    manifest: ManifestOpt = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            help="Address(es) ComfyUI listens on (default 127.0.0.1; 0.0.0.0 = every interface, "
            "with no authentication).",
        ),
    ] = None,
    port: PortOpt = None,
    comfy_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--comfy-arg", help="Pass an argument to ComfyUI (repeatable), e.g. --comfy-arg=--lowvram."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for readiness.")
    ] = 120.0,
    json_out: JsonOpt = False,
) -> None:
    """Start ComfyUI detached, wait until it answers, and record it (reuses one started earlier)."""
    out = Output("comfy start", json_mode=json_out)
    with guarded(out):
        import time

        from fluxops.comfy import command as cmdline
        from fluxops.comfy import server

        settings = build_settings(
            ctx, comfyui_dir=comfyui_dir, comfyui_python=comfyui_python, models_dir=models_dir, manifest=manifest,
            port=port,
        )
        extra = cmdline.split_comfy_args(comfy_arg or [])
        exposed = cmdline.exposed_addresses(cmdline.parse_listen(listen or cmdline.DEFAULT_LISTEN))
        if exposed:
            out.warn(
                f"ComfyUI has no authentication: listening on {', '.join(exposed)} lets anyone who can reach "
                f"this machine on port {settings.port} run workflows, read outputs and upload files. "
                "Use a firewall, an SSH tunnel or a reverse proxy with authentication."
            )
        began = time.monotonic()
        try:
            state = server.start(
                settings, listen=listen, extra_args=extra, timeout=timeout, on_event=out.note
            )
        except server.ComfyStartError as exc:
            out.note(f"last lines of {exc.log_path}:")
            for line in exc.log_tail:
                out.note(f"  {line}")
            raise
        seconds = time.monotonic() - began
        out.emit(
            {
                "server": state.to_dict(),
                "url": state.url,
                "reused": state.reused,
                "seconds": round(seconds, 2),
            }
        )
        verb = "already running" if state.reused else f"ready in {seconds:.1f} s"
        out.line(f"ComfyUI {verb} at {state.url} (pid {state.pid})", style="green")
        out.line(f"log: {state.log_path}")


@comfy_app.command()
def stop(
    ctx: typer.Context,
    grace: Annotated[
        float, typer.Option("--grace", min=0, help="Seconds between SIGTERM and SIGKILL.")
    ] = 10.0,
    port: PortOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop the ComfyUI fluxops started (never a server fluxops did not start)."""
    out = Output("comfy stop", json_mode=json_out)
    with guarded(out):
        from fluxops.comfy import server

        settings = build_settings(ctx, port=port)
        result = server.stop(settings, grace=grace)
        out.emit(result.to_dict())
        pid = result.state.pid if result.state else None
        messages = {
            "terminated": f"stopped ComfyUI (pid {pid})",
            "killed": f"ComfyUI (pid {pid}) ignored SIGTERM for {grace:g} s and was killed",
            "stale": f"ComfyUI (pid {pid}) had already exited; its state was cleared",
            "not_running": "ComfyUI is not running (fluxops started none)",
        }
        out.line(messages[result.outcome], style="green" if result.outcome != "killed" else "yellow")


@comfy_app.command()
def status(
    ctx: typer.Context,
    port: PortOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Whether the ComfyUI fluxops started runs: pid, uptime, version, devices and VRAM, queue."""
    out = Output("comfy status", json_mode=json_out)
    with guarded(out):
        from fluxops.comfy import server

        settings = build_settings(ctx, port=port)
        report = server.status(settings)
        out.emit(report.to_dict(), ok=report.ok)
        _show_status(out, report)
        if not report.ok:
            raise typer.Exit(ExitCode.FAILURE)


def _show_status(out: Output, report) -> None:  # report: server.ServerStatus
    data = report.to_dict()
    if report.ok:
        out.line(
            f"ComfyUI {data['comfyui_version']} running at {data['url']} (pid {data['pid']}, up "
            f"{_duration(report.uptime_s)})",
            style="green",
        )
        for device in data["devices"]:
            out.line(
                f"device: {device.get('name')}: {human_bytes(device.get('vram_free'))} free of "
                f"{human_bytes(device.get('vram_total'))}"
            )
        out.line(f"queue: {data['queue']['running']} running, {data['queue']['pending']} pending")
        out.line(f"log: {data['log_path']}")
    elif report.running:
        out.line(
            f"ComfyUI (pid {data['pid']}, up {_duration(report.uptime_s)}) runs but does not answer at "
            f"{data['url']}" + (" (another server answers there)" if report.foreign else ""),
            style="yellow",
        )
        out.hint("`fluxops comfy logs`; if it stays like this: `fluxops comfy stop` and start again")
    else:
        why = (
            f" (pid {data['pid']} exited; run `fluxops comfy stop` to clear its state)"
            if report.stale
            else ""
        )
        out.line(f"ComfyUI is not running{why}", style="red")
        if report.foreign:
            version = data["foreign"]["comfyui_version"]
            out.line(f"a ComfyUI {version} that fluxops did not start answers on that port")


@comfy_app.command()
def logs(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many of the last lines.")] = 50,
    follow: Annotated[
        bool,
        typer.Option("-f", "--follow", help="Keep printing new lines while ComfyUI runs (Ctrl-C to stop)."),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Print ComfyUI's log (the server fluxops started)."""
    if follow and json_out:
        raise typer.BadParameter("--follow prints lines as they come; it cannot be combined with --json")
    out = Output("comfy logs", json_mode=json_out)
    with guarded(out):
        from fluxops.comfy import logfile, server

        settings = build_settings(ctx)
        path = server.current_log(settings)
        end = path.stat().st_size  # follow from exactly where the tail ends
        tail = logfile.tail(path, lines, end)
        out.emit({"log_path": str(path), "lines": tail})
        for line in tail:
            out.line(line)
        if follow:
            for line in logfile.follow(path, lambda: server.still_running(settings), offset=end):
                out.line(line)
