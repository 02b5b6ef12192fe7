"""The production workflow: load an API-format graph, find its nodes by role, apply a preset and overrides.

A workflow is ComfyUI's API format: ``{node_id: {"class_type", "inputs", "_meta": {"title"}}}``. fluxops
finds nodes by their title (``_meta.title``), not by id, so any API-format export with the same titles works;
where a title is missing, a class that occurs once in the graph stands in for it. Model file names come from
the manifest (``ModelSpec.filename`` by file id), so a different manifest changes them in one place.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.models.manifest import Manifest

DEFAULT_WORKFLOW_NAME = "production_photorealistic_turbo.json"


@dataclass(frozen=True)
class Role:
    title: str  # the node title (``_meta.title``) that marks the role
    class_type: str  # the class that stands in when no node carries the title and it occurs once
    required: bool


ROLES: dict[str, Role] = {
    "diffusion_model": Role("Diffusion Model", "UNETLoader", False),
    "text_encoders": Role("Text Encoders", "DualCLIPLoader", False),
    "lora": Role("Turbo LoRA", "LoraLoader", False),
    "positive": Role("Positive Prompt", "CLIPTextEncode", True),
    "negative": Role("Negative Prompt", "CLIPTextEncode", False),
    "latent": Role("Image Size", "EmptyLatentImage", True),
    "sampler": Role("Sampler", "KSampler", True),
    "vae": Role("VAE", "VAELoader", False),
    "save": Role("Save Image", "SaveImage", True),
}

# manifest file id -> (role, input name) that carries its file name
MODEL_INPUTS: dict[str, tuple[str, str]] = {
    "diffusion_model": ("diffusion_model", "unet_name"),
    "clip_l": ("text_encoders", "clip_name1"),
    "t5xxl": ("text_encoders", "clip_name2"),
    "vae": ("vae", "vae_name"),
    "lora": ("lora", "lora_name"),
}


@dataclass(frozen=True)
class Preset:
    name: str
    steps: int
    cfg: float
    lora_strength: float


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("fast", 8, 1.5, 0.8),
    Preset("production", 10, 2.0, 0.75),
    Preset("quality", 12, 2.5, 0.7),
    Preset("premium", 15, 3.0, 0.6),
)}
DEFAULT_PRESET = "production"


@dataclass(frozen=True)
class Overrides:
    """What the command line changes; None means "the preset's or the workflow's value"."""

    prompt: str | None = None
    negative: str | None = None
    steps: int | None = None
    cfg: float | None = None
    sampler: str | None = None
    scheduler: str | None = None
    lora_strength: float | None = None
    width: int | None = None
    height: int | None = None
    batch: int | None = None


@dataclass(frozen=True)
class Params:
    """Every value that decides an image, as submitted (recorded in the sidecar)."""

    preset: str
    prompt: str
    negative: str | None
    seed: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    lora_strength: float | None
    width: int
    height: int
    batch: int
    denoise: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Workflow:
    name: str
    path: Path
    graph: dict[str, Any]
    roles: dict[str, str]  # role -> node id

    def node(self, role: str) -> dict[str, Any]:
        return self.graph[self.roles[role]]

    def value(self, role: str, name: str) -> Any:
        return self.node(role)["inputs"].get(name) if role in self.roles else None

    @property
    def seed_input(self) -> str:
        """The sampler input that carries the seed (``noise_seed`` on samplers that call it so)."""
        return "noise_seed" if "noise_seed" in self.node("sampler")["inputs"] else "seed"


def packaged_workflow() -> Path:
    return Path(str(resources.files("fluxops") / "data" / "workflows" / DEFAULT_WORKFLOW_NAME))


def load_workflow(path: Path | None = None) -> Workflow:
    """Read an API-format workflow and find its roles. UI-format files are refused with how to export."""
    path = path or packaged_workflow()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FluxopsError("workflow.unreadable", f"{path}: cannot read the workflow ({exc.strerror})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FluxopsError("workflow.invalid", f"{path}: not a JSON file ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and isinstance(data.get("links"), list):
        raise FluxopsError("workflow.ui_format", f"{path} is a ComfyUI UI workflow (it has 'nodes' and 'links'); "
                           "fluxops needs the API format")
    graph = _check_graph_shape(path, data)
    return Workflow(name=path.stem, path=path, graph=graph, roles=find_roles(path, graph))


def _check_graph_shape(path: Path, data: Any) -> dict[str, Any]:
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict):
        data = data["prompt"]  # a saved POST /prompt body
    if not isinstance(data, dict) or not data:
        raise FluxopsError("workflow.invalid", f"{path}: expected an API-format graph "
                           "({node_id: {class_type, inputs}})")
    for node_id, node in data.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str) \
                or not isinstance(node.get("inputs", {}), dict):
            raise FluxopsError("workflow.invalid", f"{path}: node {node_id!r} has no class_type/inputs, so this is "
                               "not an API-format graph")
        node.setdefault("inputs", {})
    return data


def title_of(node: dict[str, Any]) -> str | None:
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, dict) else None
    return title if isinstance(title, str) else None


def find_roles(path: Path, graph: dict[str, Any]) -> dict[str, str]:
    by_title: dict[str, list[str]] = {}
    by_class: dict[str, list[str]] = {}
    for node_id, node in graph.items():
        title = title_of(node)
        if title:
            by_title.setdefault(title.strip().casefold(), []).append(node_id)
        by_class.setdefault(node["class_type"], []).append(node_id)
    roles: dict[str, str] = {}
    for role, spec in ROLES.items():
        titled = by_title.get(spec.title.casefold(), [])
        if len(titled) > 1:
            raise FluxopsError("workflow.invalid", f"{path}: {len(titled)} nodes are titled {spec.title!r}; "
                               "each role needs exactly one")
        candidates = titled or (by_class.get(spec.class_type, []) if len(by_class.get(spec.class_type, [])) == 1
                                and role not in ("positive", "negative") else [])
        if candidates:
            roles[role] = candidates[0]
        elif spec.required:
            raise FluxopsError("workflow.role_missing", f"{path}: no node titled {spec.title!r} "
                               f"(a {spec.class_type}); fluxops finds the nodes it sets by title",
                               hint=f"in ComfyUI, title that node {spec.title!r} (right-click > Title), then "
                               "export the API format again")
    return roles


def resolve_params(workflow: Workflow, preset_name: str, overrides: Overrides, seed: int) -> Params:
    """Preset, then overrides, then the workflow's own values for anything neither sets."""
    if preset_name not in PRESETS:
        raise FluxopsError("workflow.invalid_value", f"unknown preset {preset_name!r}; presets: "
                           + ", ".join(PRESETS))
    preset = PRESETS[preset_name]
    has_lora = "lora" in workflow.roles
    if overrides.lora_strength is not None and not has_lora:
        raise FluxopsError("workflow.role_missing", f"{workflow.path}: --lora-strength needs a node titled "
                           f"{ROLES['lora'].title!r}")
    wf = workflow.value
    return Params(
        preset=preset.name,
        prompt=overrides.prompt if overrides.prompt is not None else str(wf("positive", "text") or ""),
        negative=(overrides.negative if overrides.negative is not None else wf("negative", "text"))
        if "negative" in workflow.roles else None,
        seed=seed,
        steps=overrides.steps if overrides.steps is not None else preset.steps,
        cfg=overrides.cfg if overrides.cfg is not None else preset.cfg,
        sampler=overrides.sampler or wf("sampler", "sampler_name") or "euler",
        scheduler=overrides.scheduler or wf("sampler", "scheduler") or "simple",
        lora_strength=(overrides.lora_strength if overrides.lora_strength is not None
                       else preset.lora_strength) if has_lora else None,
        # `is not None`: an explicit 0 is the user's value (refused by the range check), not "unset"
        width=overrides.width if overrides.width is not None else wf("latent", "width"),
        height=overrides.height if overrides.height is not None else wf("latent", "height"),
        batch=overrides.batch if overrides.batch is not None else wf("latent", "batch_size") or 1,
        denoise=wf("sampler", "denoise"),
    )


def build_graph(workflow: Workflow, params: Params, manifest: Manifest | None = None) -> dict[str, Any]:
    """The graph to submit: a copy of the workflow with the parameters and the manifest's file names set."""
    graph = copy.deepcopy(workflow.graph)

    def put(role: str, name: str, value: Any) -> None:
        if role in workflow.roles:
            graph[workflow.roles[role]]["inputs"][name] = value

    put("positive", "text", params.prompt)
    if params.negative is not None:
        put("negative", "text", params.negative)
    put("sampler", workflow.seed_input, params.seed)
    put("sampler", "steps", params.steps)
    put("sampler", "cfg", params.cfg)
    put("sampler", "sampler_name", params.sampler)
    put("sampler", "scheduler", params.scheduler)
    if params.lora_strength is not None:
        put("lora", "strength_model", params.lora_strength)
        put("lora", "strength_clip", params.lora_strength)
    put("latent", "width", params.width)
    put("latent", "height", params.height)
    put("latent", "batch_size", params.batch)
    if manifest is not None:
        for file_id, (role, name) in MODEL_INPUTS.items():
            spec = next((f for f in manifest.files if f.id == file_id), None)
            if spec is not None and role in workflow.roles:
                put(role, name, spec.filename)
    return graph


def model_names(workflow: Workflow, graph: dict[str, Any]) -> dict[str, str]:
    """manifest file id -> the file name the graph loads."""
    names = {}
    for file_id, (role, name) in MODEL_INPUTS.items():
        if role in workflow.roles:
            value = graph[workflow.roles[role]]["inputs"].get(name)
            if isinstance(value, str):
                names[file_id] = value
    return names
