"""`fluxops comfy start|stop|status|logs`: run ComfyUI in the background.

Every subcommand takes the options `comfy start` takes, so a command line can be turned into another by editing
one word (`fluxops comfy stop --comfyui-dir X --port N`); one that does not apply to a subcommand is ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fluxops.cli.app import app, build_settings, guarded
from fluxops.cli.options import (
    ComfyArgOpt,
    ComfyDirOpt,
    ComfyPythonOpt,
    JsonOpt,
    ListenOpt,
    ManifestOpt,
    ModelsDirOpt,
    PortOpt,
    StartTimeoutOpt,
)
from fluxops.console import Output, human_bytes
from fluxops.errors import REGISTRY, ExitCode

if TYPE_CHECKING:
    from fluxops.comfy.server import ServerStatus
    from fluxops.settings import Settings

comfy_app = typer.Typer(
    name="comfy", help="Install ComfyUI, and run it in the background: install, start, stop, status, logs.",
    no_args_is_help=True,
)
app.add_typer(comfy_app, name="comfy")
START_TIMEOUT = 120.0  # fluxops.comfy.server.DEFAULT_TIMEOUT (not imported here: `--help` stays fast)


def _settings(
    ctx: typer.Context, comfyui_dir: Path | None, comfyui_python: Path | None, models_dir: Path | None,
    manifest: Path | None, port: int | None,
) -> Settings:
    return build_settings(
        ctx, comfyui_dir=comfyui_dir, comfyui_python=comfyui_python, models_dir=models_dir, manifest=manifest,
        port=port,
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    return " ".join([*parts, f"{secs}s"])


def _warn_if_exposed(out: Output, listen: str | None, port: int) -> None:
    from fluxops.comfy import command as cmdline

    exposed = cmdline.exposed_addresses(cmdline.parse_listen(listen or cmdline.DEFAULT_LISTEN))
    if exposed:
        out.warn(
            f"ComfyUI has no authentication: listening on {', '.join(exposed)} lets anyone who can reach "
            f"this machine on port {port} run workflows, read outputs and upload files. "
            "Use a firewall, an SSH tunnel or a reverse proxy with authentication."
        )


@comfy_app.command()
def start(
    ctx: typer.Context,
    comfyui_dir: ComfyDirOpt = None,
    comfyui_python: ComfyPythonOpt = None,
    models_dir: ModelsDirOpt = None,
    manifest: ManifestOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    comfy_arg: ComfyArgOpt = None,
    timeout: StartTimeoutOpt = START_TIMEOUT,
    json_out: JsonOpt = False,
) -> None:
    """Start ComfyUI detached, wait until it answers, and record it (reuses one started earlier)."""
    out = Output("comfy start", json_mode=json_out)
    with guarded(out):
        import time

        from fluxops.comfy import command as cmdline
        from fluxops.comfy import server

        settings = _settings(ctx, comfyui_dir, comfyui_python, models_dir, manifest, port)
        extra = cmdline.split_comfy_args(comfy_arg or [])
        _warn_if_exposed(out, listen, settings.port)
        began = time.monotonic()
        try:
            state = server.start(settings, listen=listen, extra_args=extra, timeout=timeout, on_event=out.note)
        except server.ComfyStartError as exc:
            out.note(f"last lines of {exc.log_path}:")
            for line in exc.log_tail:
                out.note(f"  {line}")
            raise
        seconds = time.monotonic() - began
        out.emit({"server": state.to_dict(), "url": state.url, "reused": state.reused, "seconds": round(seconds, 2)})
        verb = "already running" if state.reused else f"ready in {seconds:.1f} s"
        out.line(f"ComfyUI {verb} at {state.url} (pid {state.pid})", style="green")
        out.line(f"log: {state.log_path}")


@comfy_app.command()
def stop(
    ctx: typer.Context,
    grace: Annotated[float, typer.Option("--grace", min=0, help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
    comfyui_dir: ComfyDirOpt = None,
    comfyui_python: ComfyPythonOpt = None,
    models_dir: ModelsDirOpt = None,
    manifest: ManifestOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    comfy_arg: ComfyArgOpt = None,
    timeout: StartTimeoutOpt = START_TIMEOUT,
    json_out: JsonOpt = False,
) -> None:
    """Stop the ComfyUI fluxops started (never a server fluxops did not start).

    Takes `comfy start`'s options too: --port and --listen say where to look for a server fluxops did not
    start when it started none; the others are ignored.
    """
    out = Output("comfy stop", json_mode=json_out)
    with guarded(out):
        from fluxops.comfy import server

        settings = _settings(ctx, comfyui_dir, comfyui_python, models_dir, manifest, port)
        result = server.stop(settings, grace=grace, listen=listen)
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
    comfyui_dir: ComfyDirOpt = None,
    comfyui_python: ComfyPythonOpt = None,
    models_dir: ModelsDirOpt = None,
    manifest: ManifestOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    comfy_arg: ComfyArgOpt = None,
    timeout: StartTimeoutOpt = START_TIMEOUT,
    json_out: JsonOpt = False,
) -> None:
    """Whether the ComfyUI fluxops started runs: pid, uptime, version, devices and VRAM, queue.

    Takes `comfy start`'s options too: --port and --listen say where to look when fluxops started none; the
    others are ignored.
    """
    out = Output("comfy status", json_mode=json_out)
    with guarded(out):
        from fluxops.comfy import server

        settings = _settings(ctx, comfyui_dir, comfyui_python, models_dir, manifest, port)
        report = server.status(settings, listen=listen)
        out.emit(report.to_dict(), ok=report.ok)
        _show_status(out, report)
        if not report.ok:
            raise typer.Exit(ExitCode.FAILURE)


def _show_status(out: Output, report: ServerStatus) -> None:
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
        out.hint(REGISTRY["comfy.unresponsive"].hint or "")
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
    comfyui_dir: ComfyDirOpt = None,
    comfyui_python: ComfyPythonOpt = None,
    models_dir: ModelsDirOpt = None,
    manifest: ManifestOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    comfy_arg: ComfyArgOpt = None,
    timeout: StartTimeoutOpt = START_TIMEOUT,
    json_out: JsonOpt = False,
) -> None:
    """Print ComfyUI's log (the server fluxops started).

    Takes `comfy start`'s options too (ignored: the log is that of the server fluxops started).
    """
    if follow and json_out:
        raise typer.BadParameter("--follow prints lines as they come; it cannot be combined with --json")
    out = Output("comfy logs", json_mode=json_out)
    with guarded(out):
        from fluxops.comfy import logfile, server

        settings = _settings(ctx, comfyui_dir, comfyui_python, models_dir, manifest, port)
        path = server.current_log(settings)
        end = path.stat().st_size  # follow from exactly where the tail ends
        tail = logfile.tail(path, lines, end)
        out.emit({"log_path": str(path), "lines": tail})
        for line in tail:
            out.line(line)
        if follow:
            for line in logfile.follow(path, lambda: server.still_running(settings), offset=end):
                out.line(line)


@comfy_app.command()
def install(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Argument(
        help="Where ComfyUI goes (default: the configured comfyui_dir, else ~/ComfyUI).", show_default=False,
        file_okay=False)] = None,
    python: Annotated[Path | None, typer.Option(
        "--python", help="The Python that creates ComfyUI's venv (default: the one running fluxops).",
        dir_okay=False)] = None,
    torch_index: Annotated[str | None, typer.Option(
        "--torch-index", help="Install torch from this index instead of the one chosen for this machine "
        "(a mirror, an air-gapped index).")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Install the CPU build of torch, whatever GPU there is.")] = False,
    upgrade: Annotated[bool, typer.Option(
        "--upgrade", help="Move an existing install to the manifest's pin and this machine's torch build.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="With --upgrade: keep local changes in `git stash` instead of refusing.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan (commit, Python, torch index and why, disk) and change nothing.")] = False,
    comfyui_dir: ComfyDirOpt = None,
    comfyui_python: ComfyPythonOpt = None,
    models_dir: ModelsDirOpt = None,
    manifest: ManifestOpt = None,
    listen: ListenOpt = None,
    port: PortOpt = None,
    comfy_arg: ComfyArgOpt = None,
    timeout: StartTimeoutOpt = START_TIMEOUT,
    json_out: JsonOpt = False,
) -> None:
    """Install the manifest's ComfyUI release with the torch build this GPU and driver can run.

    Clones the pinned tag (checked against its pinned commit) and makes DIR/venv.

    Installs torch, torchvision and torchaudio from the index chosen for this machine, then ComfyUI's
    requirements with torch pinned.

    Records it in DIR/fluxops-lock.json, saves comfyui_dir in the config file, runs doctor's gpu and torch checks.

    A rerun finishes an interrupted install and leaves a finished one alone.

    Takes `comfy start`'s options too: --comfyui-dir is the same as DIR; the others are ignored.
    """
    out = Output("comfy install", json_mode=json_out)
    with guarded(out):
        from fluxops.cli.comfy_install import install_body

        if cpu and torch_index:
            raise typer.BadParameter("--cpu and --torch-index both choose the build; give one", param_hint="--cpu")
        if force and not upgrade:
            raise typer.BadParameter("--force only goes with --upgrade", param_hint="--force")
        settings = _settings(ctx, comfyui_dir, comfyui_python, models_dir, manifest, port)
        code = install_body(out, settings, directory=directory or comfyui_dir, python=python,
                            torch_index=torch_index, cpu=cpu, upgrade=upgrade, force=force, dry_run=dry_run)
    if code:
        raise typer.Exit(code)
