"""Checks of the ComfyUI install, its port and the node classes a running server offers."""

from __future__ import annotations

from fluxops.doctor.context import DoctorContext
from fluxops.doctor.result import CheckResult, fail, ok, skip, warn
from fluxops.errors import FluxopsError

# The node classes of the production workflow (the class_type of each node in
# fluxops/data/workflows/production_photorealistic_turbo.json). Workflow templates shipped in
# fluxops/data/workflows/ add theirs (see workflow_node_classes).
WORKFLOW_NODES = (
    "UNETLoader",
    "DualCLIPLoader",
    "LoraLoader",
    "CLIPTextEncode",
    "EmptyLatentImage",
    "KSampler",
    "VAELoader",
    "VAEDecode",
    "SaveImage",
)


def check_install(ctx: DoctorContext) -> CheckResult:
    from fluxops.comfy.gitinfo import git_info
    from fluxops.comfy.install import read_version

    root = ctx.settings.comfyui_dir
    if root is None:
        return warn(
            "comfyui.install",
            "no ComfyUI folder configured",
            "pass --comfyui-dir DIR, or set comfyui_dir in fluxops.toml (see `fluxops config`)",
        )
    if not (root / "main.py").is_file():
        what = "does not exist" if not root.exists() else "has no main.py"
        return fail(
            "comfyui.install",
            f"{root} {what}: not a ComfyUI folder",
            "point --comfyui-dir at the folder that holds ComfyUI's main.py",
            comfyui_dir=str(root),
        )
    version = read_version(root)
    python, source = ctx.comfy_python
    git = git_info(root) if (root / ".git").exists() else None  # offline: no fetch
    commit = git.commit[:12] if git and git.commit else None
    changed = git.changed_files if git else []
    behind = f", {git.behind} commit(s) behind {git.upstream}" if git and git.behind else ""
    details = [
        f"{root} · version {version or '?'}"
        + (
            f" · git {commit}" + (f", {len(changed)} locally changed file(s)" if changed else ", clean") + behind
            if commit
            else " · not a git checkout"
        ),
        f"python: {python or 'not found'} ({source})",
        *[f"changed: {name}" for name in changed[:10]],
    ]
    facts = {
        "comfyui_dir": str(root),
        "version": version,
        "git_commit": commit,
        "local_changes": changed,
        "git_branch": git.branch if git else None,
        "git_behind": git.behind if git else None,
        "python": str(python) if python else None,
        "python_source": source,
    }
    summary = f"ComfyUI {version or '(version unknown)'} at {root}"
    if python is None:
        return warn(
            "comfyui.install",
            summary + ", but no Python found beside it",
            "pass --comfyui-python PATH (the interpreter ComfyUI runs with)",
            details,
            **facts,
        )
    return ok("comfyui.install", summary, details, **facts)


def check_port(ctx: DoctorContext) -> CheckResult:
    probe = ctx.server
    where = f"{probe.host}:{probe.port}"
    holder = probe.holder
    who = (
        f"pid {holder.pid} ({holder.name or '?'})"
        if holder and holder.pid
        else "a process this user cannot see (another user's, or in a container)"
    )
    facts = {
        "host": probe.host,
        "port": probe.port,
        "state": probe.state,
        "holder": holder.__dict__ if holder else None,
        "fluxops_record": probe.record.to_dict() if probe.record else None,
        "stale_record": probe.stale_record,
    }
    details = [f"held by {who}" + (f": {holder.cmdline}" if holder and holder.cmdline else "")] if holder else []
    if probe.stale_record:
        details.append("a stale server record (its process is gone) will be replaced by `fluxops comfy start`")
    if probe.state == "free":
        return ok("comfyui.port", f"port {where} is free", details, **facts)
    if probe.state == "ours":
        record = probe.record
        assert record is not None  # "ours" implies a live record
        return ok(
            "comfyui.port",
            f"port {where} is held by the ComfyUI fluxops started (pid {record.pid}, "
            f"since {record.started_at}): fluxops reuses it",
            details,
            **facts,
        )
    other_port = 8189 if probe.port != 8189 else 8190
    if probe.state == "comfyui":
        return warn(
            "comfyui.port",
            f"a ComfyUI that fluxops did not start is listening on {where} ({who})",
            f"stop it{f' (kill {holder.pid})' if holder and holder.pid else ''} and run `fluxops comfy "
            f"start`, or use another port: --port {other_port}",
            details,
            **facts,
        )
    return fail(
        "comfyui.port",
        f"port {where} is held by another program: {who}",
        f"stop it{f' (kill {holder.pid})' if holder and holder.pid else ''}, or use another port: "
        f"--port {other_port} (or FLUXOPS_PORT)",
        details,
        **facts,
    )


def workflow_node_classes() -> set[str]:
    """The production workflow's node classes, plus those of any workflow template fluxops ships."""
    import json
    from importlib import resources

    classes = set(WORKFLOW_NODES)
    folder = resources.files("fluxops") / "data" / "workflows"
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.endswith(".json"):
                try:
                    graph = json.loads(entry.read_text(encoding="utf-8"))
                except ValueError:
                    continue
                nodes = graph.get("prompt", graph) if isinstance(graph, dict) else {}
                classes |= {
                    n["class_type"]
                    for n in nodes.values()
                    if isinstance(n, dict) and isinstance(n.get("class_type"), str)
                }
    return classes


def check_nodes(ctx: DoctorContext) -> CheckResult:
    probe = ctx.server
    if not probe.answers:
        return skip(
            "comfyui.nodes",
            "no ComfyUI server answers: nothing to ask for its nodes",
            "start one with `fluxops comfy start`, then run `fluxops doctor comfyui.nodes`",
        )
    from fluxops.doctor.comfy_server import object_info  # requests + the client: only when a server answers

    info = object_info(probe.base_url)
    if isinstance(info, FluxopsError):
        return fail(
            "comfyui.nodes",
            f"the ComfyUI at {probe.base_url} did not answer GET /object_info: {info.message}",
            "look at its log (`fluxops comfy logs`) and restart it (`fluxops comfy stop`, `fluxops comfy start`)",
            url=probe.base_url,
        )
    needed = workflow_node_classes()
    missing = sorted(needed - set(info))
    version = (probe.system_stats or {}).get("system", {}).get("comfyui_version")
    facts = {
        "url": probe.base_url,
        "comfyui_version": version,
        "node_classes": len(info),
        "required": sorted(needed),
        "missing": missing,
    }
    if missing:
        return fail(
            "comfyui.nodes",
            f"ComfyUI {version or ''} at {probe.base_url} lacks node class(es) the workflow uses: {', '.join(missing)}",
            "update ComfyUI (`git pull` in its folder, then restart it) or install the custom node that provides them",
            **facts,
        )
    return ok(
        "comfyui.nodes",
        f"ComfyUI {version or ''} at {probe.base_url} has all {len(needed)} node classes "
        f"the workflow uses ({len(info)} in all)",
        **facts,
    )
