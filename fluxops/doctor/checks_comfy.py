"""Checks of the ComfyUI install, its port and the node classes a running server offers."""

from __future__ import annotations

from fluxops.doctor.context import DoctorContext
from fluxops.doctor.result import CheckResult, fail, ok, skip, warn
from fluxops.errors import FluxopsError

OBJECT_INFO_TIMEOUT_S = 5.0
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
            "`fluxops comfy install` installs one; for an existing one pass --comfyui-dir DIR "
            "(or set comfyui_dir: see `fluxops config`)",
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
    from fluxops.comfy.ownership import OwnerKind  # the HTTP client: only when the port is checked

    owner = ctx.server
    where = f"{owner.host}:{owner.port}"
    listener = owner.listener
    who = listener.label if listener else "a process this user cannot see (another user's, or in a container)"
    facts = {
        "host": owner.host,
        "port": owner.port,
        "state": owner.kind.value,
        "holder": listener.__dict__ if listener else None,
        "fluxops_record": owner.record.to_dict() if owner.record else None,
        "stale_record": owner.stale_record is not None,
    }
    details = [f"held by {who}" + (f": {listener.cmdline}" if listener.cmdline else "")] if listener else []
    if owner.stale_record is not None:
        details.append("a stale server record (its process is gone) will be replaced by `fluxops comfy start`")
    if owner.kind is OwnerKind.FREE:
        return ok("comfyui.port", f"port {where} is free", details, **facts)
    if owner.kind is OwnerKind.OURS:
        record = owner.record
        assert record is not None  # ours implies a live record
        return ok(
            "comfyui.port",
            f"port {where} is held by the ComfyUI fluxops started (pid {record.pid}, "
            f"since {record.started_at}): fluxops reuses it",
            details,
            **facts,
        )
    other_port = 8189 if owner.port != 8189 else 8190
    stop_it = f"stop it (kill {listener.pid})" if listener else "stop it"
    if owner.kind is OwnerKind.COMFYUI:
        return warn(
            "comfyui.port",
            f"a ComfyUI that fluxops did not start is listening on {where} ({who})",
            f"{stop_it} and run `fluxops comfy start`, or use another port: --port {other_port}",
            details,
            **facts,
        )
    return fail(
        "comfyui.port",
        f"port {where} is held by another program: {who}",
        f"{stop_it}, or use another port: --port {other_port} (or FLUXOPS_PORT)",
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
    owner = ctx.server
    if not owner.answers:
        return skip(
            "comfyui.nodes",
            "no ComfyUI server answers: nothing to ask for its nodes",
            "start one with `fluxops comfy start`, then run `fluxops doctor comfyui.nodes`",
        )
    from fluxops.comfy.client import ComfyClient  # requests: only when a server answers

    try:
        with ComfyClient(owner.base_url, timeout=OBJECT_INFO_TIMEOUT_S) as client:
            info = client.object_info()
    except FluxopsError as exc:
        return fail(
            "comfyui.nodes",
            f"the ComfyUI at {owner.base_url} did not answer GET /object_info: {exc.message}",
            "look at its log (`fluxops comfy logs`) and restart it (`fluxops comfy stop`, `fluxops comfy start`)",
            url=owner.base_url,
        )
    needed = workflow_node_classes()
    missing = sorted(needed - set(info))
    version = (owner.system_stats or {}).get("system", {}).get("comfyui_version")
    facts = {
        "url": owner.base_url,
        "comfyui_version": version,
        "node_classes": len(info),
        "required": sorted(needed),
        "missing": missing,
    }
    if missing:
        return fail(
            "comfyui.nodes",
            f"ComfyUI {version or ''} at {owner.base_url} lacks node class(es) the workflow uses: {', '.join(missing)}",
            "update ComfyUI (`git pull` in its folder, then restart it) or install the custom node that provides them",
            **facts,
        )
    return ok(
        "comfyui.nodes",
        f"ComfyUI {version or ''} at {owner.base_url} has all {len(needed)} node classes "
        f"the workflow uses ({len(info)} in all)",
        **facts,
    )
