"""Check a graph against ComfyUI's node specs (``/object_info``) before it is submitted.

ComfyUI validates a prompt on ``POST /prompt`` and answers 400 with ``node_errors``; these checks find the same
problems first and say them in the user's terms (the node's role title, the option that sets the value, the
command that fixes it). Semantics follow ComfyUI's ``execution.validate_inputs``
(https://github.com/comfyanonymous/ComfyUI/blob/master/execution.py):
INT with ``int()``, FLOAT with ``float()``, min/max only (``step`` is not enforced), COMBO values matched exactly.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from fluxops.comfy import failures
from fluxops.errors import FluxopsError

MODEL_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl", ".gguf")
# COMBO inputs that list model files, and the ComfyUI folder they list
MODEL_FOLDERS = {"unet_name": "diffusion_models", "clip_name": "text_encoders", "clip_name1": "text_encoders",
                 "clip_name2": "text_encoders", "vae_name": "vae", "lora_name": "loras", "ckpt_name": "checkpoints"}
# CLI option that sets an input, to name it in messages
OPTION_FOR = {"steps": "--steps", "cfg": "--cfg", "sampler_name": "--sampler", "scheduler": "--scheduler",
              "strength_model": "--lora-strength", "strength_clip": "--lora-strength", "width": "--width",
              "height": "--height", "batch_size": "--batch", "seed": "--seed"}


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # "INT", "FLOAT", "STRING", "MODEL", ... or "COMBO"
    options: tuple[Any, ...] | None  # COMBO choices
    config: Mapping[str, Any]  # min, max, default, ...
    required: bool


@dataclass(frozen=True)
class NodeSpec:
    class_type: str
    inputs: Mapping[str, InputSpec]
    outputs: tuple[str, ...]
    output_node: bool


class ProblemKind(str, Enum):
    MISSING_CLASS = "missing_class"  # the server has no such node class
    MODEL_MISSING = "model_missing"  # a model file is not in the server's list
    BAD_LINK = "bad_link"  # a link to a node or output that does not exist, or of the wrong type
    INVALID_VALUE = "invalid_value"  # a value outside what the input accepts


@dataclass(frozen=True)
class Problem:
    node_id: str
    where: str  # "Sampler (KSampler #7)"
    kind: ProblemKind
    message: str
    input: str | None = None  # the input at fault; None for the node as a whole


    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def parse_input(name: str, raw: Any, required: bool) -> InputSpec:
    """Both COMBO forms occur: legacy ``[[opts...], {...}]`` and V3 ``["COMBO", {"options": [...]}]``."""
    head = raw[0] if isinstance(raw, list) and raw else raw
    config = raw[1] if isinstance(raw, list) and len(raw) > 1 and isinstance(raw[1], dict) else {}
    if isinstance(head, list):
        return InputSpec(name, "COMBO", tuple(head), config, required)
    if head == "COMBO":
        return InputSpec(name, "COMBO", tuple(config.get("options", ())), config, required)
    return InputSpec(name, str(head), None, config, required)


def parse_node(class_type: str, info: Mapping[str, Any]) -> NodeSpec:
    inputs: dict[str, InputSpec] = {}
    for section, required in (("required", True), ("optional", False)):
        for name, raw in (info.get("input", {}).get(section) or {}).items():
            inputs[name] = parse_input(name, raw, required)
    return NodeSpec(class_type, inputs, tuple(info.get("output") or ()), bool(info.get("output_node")))


def parse_object_info(data: Mapping[str, Any]) -> dict[str, NodeSpec]:
    return {name: parse_node(name, info) for name, info in data.items() if isinstance(info, dict)}


def check_graph(graph: Mapping[str, Any], specs: Mapping[str, NodeSpec]) -> list[Problem]:
    """Every problem ComfyUI would reject the graph for, each in one readable line."""
    problems: list[Problem] = []
    for node_id, node in graph.items():
        where = failures.where(graph, node_id)
        spec = specs.get(node["class_type"])
        if spec is None:
            problems.append(Problem(node_id, where, ProblemKind.MISSING_CLASS,
                                    f"this ComfyUI has no {node['class_type']} node: update ComfyUI "
                                    "(or install the custom node that provides it)"))
            continue
        for name, ispec in spec.inputs.items():
            problem = _check_input(graph, node, name, ispec, specs)
            if problem:
                problems.append(Problem(node_id, where, problem[0], problem[1], input=name))
    return problems


Found = tuple[ProblemKind, str] | None  # what one input's check found: a kind and a message, or nothing


def _check_input(graph: Mapping[str, Any], node: Mapping[str, Any], name: str, ispec: InputSpec,
                 specs: Mapping[str, NodeSpec]) -> Found:
    inputs = node["inputs"]
    if name not in inputs:
        return (ProblemKind.INVALID_VALUE, f"required input {name!r} is missing") if ispec.required else None
    value = inputs[name]
    if isinstance(value, list):
        return _check_link(graph, name, value, ispec, specs)
    if ispec.type == "COMBO":
        return _check_choice(name, value, ispec)
    if ispec.type in ("INT", "FLOAT"):
        return _check_number(name, value, ispec)
    return None


def _check_link(graph: Mapping[str, Any], name: str, value: list[Any], ispec: InputSpec,
                specs: Mapping[str, NodeSpec]) -> Found:
    if len(value) != 2:
        return ProblemKind.BAD_LINK, f"{name}: a link must be [node_id, output_index], got {value!r}"
    source, index = value
    if not isinstance(source, str) or source not in graph:
        return ProblemKind.BAD_LINK, (f"{name}: links to node {source!r}, which is not in the graph "
                                      "(node ids are strings)")
    source_spec = specs.get(graph[source]["class_type"])
    if source_spec is None:
        return None  # reported on the source node itself
    if not isinstance(index, int) or not 0 <= index < len(source_spec.outputs):
        return ProblemKind.BAD_LINK, f"{name}: node {source} has no output {index!r}"
    got = source_spec.outputs[index]
    if ispec.type not in ("*", got) and got != "*" and ispec.type != "COMBO":
        return ProblemKind.BAD_LINK, f"{name}: expects {ispec.type} but node {source} gives {got}"
    return None


def _check_number(name: str, value: Any, ispec: InputSpec) -> Found:
    option = OPTION_FOR.get(name, name)
    try:
        number = int(value) if ispec.type == "INT" else float(value)
    except (TypeError, ValueError):
        what = "an integer" if ispec.type == "INT" else "a number"
        return ProblemKind.INVALID_VALUE, f"{option} {value!r} is not {what}"
    if not math.isfinite(number):  # float() takes "nan" and "inf"; no comparison with min/max catches NaN
        return ProblemKind.INVALID_VALUE, f"{option} {value} is not a finite number"
    low, high = ispec.config.get("min"), ispec.config.get("max")
    if low is not None and number < low:
        return ProblemKind.INVALID_VALUE, f"{option} {value} is below the minimum of {low}"
    if high is not None and number > high:
        return ProblemKind.INVALID_VALUE, f"{option} {value} is above the maximum of {high}"
    return None


def _check_choice(name: str, value: Any, ispec: InputSpec) -> Found:
    options = ispec.options or ()
    if value in options:
        return None
    folder = MODEL_FOLDERS.get(name)
    if folder and isinstance(value, str) and value.lower().endswith(MODEL_EXTENSIONS):
        have = ", ".join(str(o) for o in options if str(o).lower().endswith(MODEL_EXTENSIONS)) or "none"
        return ProblemKind.MODEL_MISSING, f"{value!r} is not in this ComfyUI's {folder} list (it has: {have})"
    label = {"sampler_name": "sampler", "scheduler": "scheduler"}.get(name, name)
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
    suggestion = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(str(o) for o in options)
    return ProblemKind.INVALID_VALUE, f"unknown {label} {value!r}{suggestion}; valid: {shown}"


# which problem kind decides the error code (the first kind found in this order wins)
_CODE_FOR_KIND = ((ProblemKind.MISSING_CLASS, "workflow.node_missing"),
                  (ProblemKind.MODEL_MISSING, "workflow.model_missing"),
                  (ProblemKind.BAD_LINK, "workflow.invalid"),
                  (ProblemKind.INVALID_VALUE, "workflow.invalid_value"))


def raise_for(problems: list[Problem]) -> None:
    """One error naming every problem; its code (and so its hint and exit code) from the most basic kind."""
    if not problems:
        return
    kinds = {p.kind for p in problems}
    code = next(code for kind, code in _CODE_FOR_KIND if kind in kinds)
    head = problems[0] if len(problems) == 1 else None
    if head is not None:
        message = str(head)
    else:
        message = f"{len(problems)} problems, nothing was sent to ComfyUI:\n" + "\n".join(
            f"  - {p}" for p in problems)
    raise FluxopsError(code, message)
