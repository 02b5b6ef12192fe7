"""`fluxops doctor`: flutter-style `[✓] [!] [✗]` lines per check, indented facts, the fix, a summary line."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fluxops import __version__
from fluxops.cli.app import app, build_settings, guarded
from fluxops.cli.options import (
    ClusterOpt,
    ComfyDirOpt,
    ComfyPythonOpt,
    HostOpt,
    JsonOpt,
    ManifestOpt,
    ModelsDirOpt,
    PortOpt,
    RayAddressOpt,
    config_flag,
)
from fluxops.console import Output, status_mark
from fluxops.errors import ExitCode, FluxopsError

if TYPE_CHECKING:
    from fluxops.cluster.pernode import NodeRow
    from fluxops.doctor import CheckResult, DoctorOptions, DoctorReport

Line = tuple[str, str]  # (text, style)
REPORT_ENV_PREFIXES = ("FLUXOPS_", "HF_", "HUGGING", "CUDA_", "PYTORCH_", "NVIDIA_")


def result_lines(result: CheckResult, verbose: bool, group_changed: bool) -> list[Line]:
    """The human view of one check; details show for problems, and for everything with -v."""
    mark, style = status_mark(result.status.value)
    lines: list[Line] = [("", ""), (result.group, "bold")] if group_changed else []
    lines.append((f"{mark} {result.summary}  ({result.id})", style))
    if verbose or result.status.value in ("warn", "fail"):
        lines += [(f"    • {detail}", "") for detail in result.details]
    if result.fix and result.status.value != "ok":
        lines.append((f"    fix: {result.fix}", "cyan"))
    return lines


def summary_line(report: DoctorReport) -> Line:
    counts = report.counts()
    parts = [f"{counts['fail']} failed", f"{counts['warn']} warning(s)", f"{counts['ok']} ok"]
    if counts["skip"]:
        parts.append(f"{counts['skip']} skipped")
    text = ", ".join(parts) + f" ({report.seconds:.2f} s)"
    if report.ok:
        return ("• No issues found! " + text if not counts["warn"] else "• Usable, with warnings: " + text), "green"
    return ("! Doctor found problems: " + text + (" (--strict: warnings count)" if report.strict else "")), "red"


def _secrets(report: DoctorReport, env: dict[str, str]) -> list[str]:
    from fluxops.doctor.checks_hub import find_token

    found = [
        find_token(env).value or "",
        env.get("HF_TOKEN", ""),
        env.get("HUGGING_FACE_HUB_TOKEN", ""),
        env.get("HUGGINGFACE_TOKEN", ""),
    ]
    for check in report.checks:
        for device in check.facts.get("devices", []) if isinstance(check.facts.get("devices"), list) else []:
            found += [str(device.get("uuid") or ""), str(device.get("serial") or "")]
    return [s for s in found if s]


def write_report(path: Path, report: DoctorReport, env: dict[str, str]) -> None:
    import getpass

    from fluxops.doctor.redact import redact
    from fluxops.files import write_atomic

    lines = [
        f"fluxops doctor report · fluxops {__version__} · {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "command: fluxops " + " ".join(sys.argv[1:]),
        "environment:",
    ]
    lines += [f"    {key}={value}" for key, value in sorted(env.items()) if key.startswith(REPORT_ENV_PREFIXES)]
    previous = None
    for result in report.checks:
        lines += [text for text, _style in result_lines(result, True, result.group != previous)]
        if result.facts:
            lines.append("    facts: " + json.dumps(result.facts, default=str, sort_keys=True))
        previous = result.group
    lines += ["", summary_line(report)[0], ""]
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = None
    text = redact("\n".join(lines), _secrets(report, env), home=str(Path.home()), user=user)
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise FluxopsError("doctor.report_unwritable", f"cannot write {path}: {exc.strerror or exc}") from exc


def _list_checks(out: Output) -> None:
    from fluxops.doctor import CHECKS

    out.emit([{"id": c.id, "group": c.group, "title": c.title} for c in CHECKS])
    out.table(["id", "group", "checks"], [[c.id, c.group, c.title] for c in CHECKS])


def _from_dict(check: dict[str, Any]) -> CheckResult:
    from fluxops.doctor import CheckResult, Status

    return CheckResult(check["id"], Status(check["status"]), check["summary"], tuple(check["details"]),
                       check["fix"], check["facts"], check["group"])


def _node_heading(row: NodeRow) -> Line:
    node = row.node
    gpus = f"{node.gpus} GPU" + ("s" if node.gpus != 1 else "")
    return f"Node {node.label} ({node.ip}, {gpus})", "bold underline"


def _show_node(out: Output, row: NodeRow, verbose: bool) -> None:
    from fluxops.doctor import DoctorReport

    out.line("")
    text, style = _node_heading(row)
    out.line(text, style=style)
    if row.data is None:
        error = row.error or {}
        out.line(f"[✗] no report from this node: {error.get('message')}", style="red")
        if error.get("hint"):
            out.line(f"    fix: {error['hint']}", style="cyan")
        return
    results = tuple(_from_dict(c) for c in row.data["checks"])
    previous = None
    for result in results:
        for line, line_style in result_lines(result, verbose, result.group != previous):
            out.line(line, style=line_style or None)
        previous = result.group
    report = DoctorReport(results, strict=bool(row.data["strict"]), seconds=float(row.data["seconds"]))
    line, line_style = summary_line(report)
    out.line(line, style=line_style)


def _doctor_cluster(out: Output, ctx: typer.Context, flags: dict[str, Any], options: DoctorOptions,
                    checks: list[str], strict: bool, verbose: bool, ray_address: str | None) -> None:
    """Doctor on every GPU node of the Ray cluster (docs/cluster.md): one section per node."""
    from fluxops.cluster import runtime
    from fluxops.cluster.nodecheck import doctor_cluster
    from fluxops.cluster.pernode import NodeCall, absolute_flags

    address = runtime.resolve_address(ray_address, os.environ)
    call = NodeCall(absolute_flags(flags), config_flag(ctx))
    with runtime.connected(address) as ray:
        rows = doctor_cluster(ray, call, options, checks, strict)
    ok = all(row.ok for row in rows)
    out.emit({"address": address, "ok": ok, "nodes": [row.to_dict() for row in rows]}, ok=ok)
    for row in rows:
        _show_node(out, row, verbose)
    bad = [row.node.label for row in rows if not row.ok]
    out.line("")
    out.line(f"{len(rows) - len(bad)} of {len(rows)} node(s) passed" + (f"; problems on: {', '.join(bad)}" if bad
             else ""), style="red" if bad else "green")
    if not ok:
        raise typer.Exit(ExitCode.FAILURE)


@app.command()
def doctor(
    ctx: typer.Context,
    checks: Annotated[
        list[str] | None,
        typer.Argument(
            help="Check ids to run (or a group prefix such as `gpu`); all when none. See --list.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the details of every check.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit non-zero on warnings too.")] = False,
    report_file: Annotated[
        Path | None,
        typer.Option(
            "--report",
            dir_okay=False,
            help="Also write a paste-ready text report (token, GPU UUIDs/serials, user name and home path redacted).",
        ),
    ] = None,
    online: Annotated[bool, typer.Option("--online", help="Check the token and gated access on the Hub.")] = False,
    list_checks: Annotated[bool, typer.Option("--list", help="List the check ids and exit.")] = False,
    comfyui_dir: ComfyDirOpt = None,
    comfyui_python: ComfyPythonOpt = None,
    models_dir: ModelsDirOpt = None,
    manifest: ManifestOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    cuda_device: Annotated[
        int | None,
        typer.Option("--cuda-device", min=0, help="The GPU index ComfyUI will be started with (its --cuda-device)."),
    ] = None,
    width: Annotated[int, typer.Option("--width", min=64, help="Image width for the VRAM budget.")] = 1024,
    height: Annotated[int, typer.Option("--height", min=64, help="Image height for the VRAM budget.")] = 1024,
    torch_timeout: Annotated[
        float,
        typer.Option(
            "--torch-timeout",
            min=1.0,
            help="Seconds to wait for ComfyUI's Python to import torch (the answer is cached).",
        ),
    ] = 60.0,
    json_out: JsonOpt = False,
    cluster: ClusterOpt = False,
    ray_address: RayAddressOpt = None,
) -> None:
    """Diagnose the machine for the workflow: GPU, driver/CUDA vs torch, VRAM, RAM, disk, models, ComfyUI."""
    out = Output("doctor", json_mode=json_out, verbose=verbose)
    with guarded(out):
        if list_checks:
            _list_checks(out)
            return
        from fluxops.doctor import DoctorOptions, run_doctor, select_checks

        select_checks(checks or [])  # unknown ids are a usage error before anything is probed
        flags = {"comfyui_dir": comfyui_dir, "comfyui_python": comfyui_python, "models_dir": models_dir,
                 "manifest": manifest, "host": host, "port": port}
        options = DoctorOptions(
            online=online, width=width, height=height, cuda_device=cuda_device, torch_timeout=torch_timeout
        )
        if cluster:
            if report_file is not None:
                raise typer.BadParameter("not with --cluster (run it on the node)", param_hint="--report")
            _doctor_cluster(out, ctx, flags, options, checks or [], strict, verbose, ray_address)
            return
        settings = build_settings(ctx, **flags)
        env = dict(os.environ)
        state: dict[str, Any] = {"group": None}

        def show(result: CheckResult) -> None:
            for text, style in result_lines(result, verbose, result.group != state["group"]):
                out.line(text, style=style or None)
            state["group"] = result.group

        if not out.json_mode:
            out.line("Doctor summary (to see every detail, run fluxops doctor -v):")
        report = run_doctor(settings, options, env, checks or [], strict=strict, on_result=show)
        out.emit(report.to_dict(), ok=report.ok)
        text, style = summary_line(report)
        out.line("")
        out.line(text, style=style)
        if report_file is not None:
            write_report(report_file, report, env)
            out.note(f"report written to {report_file} (redacted)")
        if not report.ok:
            raise typer.Exit(ExitCode.FAILURE)
