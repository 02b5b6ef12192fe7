"""ComfyUI's error answers turned into one FluxopsError each, with the fix (the shapes
`execution.py` answers with, https://github.com/comfyanonymous/ComfyUI/blob/master/execution.py).

- A 400 from ``POST /prompt``: ``error`` plus ``node_errors`` (every failing node, each with its reasons).
- An ``execution_error`` (WebSocket or the last history message): out of memory, a model file that cannot be
  loaded, anything else a node raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fluxops.errors import FluxopsError

OOM_TYPES = ("torch.OutOfMemoryError", "torch.cuda.OutOfMemoryError", "OutOfMemoryError")
# ComfyUI flags that already keep as little as possible in VRAM (comfy/cli_args.py): --lowvram changes nothing
_LOW_MEMORY_FLAGS = ("--lowvram", "--novram", "--cpu")
SMALL_IMAGE = 512 * 512  # at or below this, a smaller size is not a remedy worth suggesting


@dataclass(frozen=True)
class RunShape:
    """What the failed prompt asked for and how the server runs: decides which remedies would change something."""

    batch: int
    width: int
    height: int
    server_argv: Sequence[str] = ()
    gpu_processes: Sequence[str] | None = None  # None: not known (a remote server)


def oom_remedies(shape: RunShape | None, on_gpu: bool) -> list[str]:
    """Only what would change something: no `--batch 1` at batch 1, no --lowvram when it already runs so."""
    if shape is None:  # nothing known about the run: the general advice
        shape = RunShape(batch=2, width=1024, height=1024)
    remedies = []
    if shape.batch > 1:
        remedies.append(f"--batch 1 (this prompt had --batch {shape.batch})")
    if shape.width * shape.height > SMALL_IMAGE:
        smaller = 768 if max(shape.width, shape.height) > 768 else 512
        remedies.append(f"a smaller --width/--height (e.g. {smaller}; this was {shape.width}x{shape.height})")
    if on_gpu and not any(flag in shape.server_argv for flag in _LOW_MEMORY_FLAGS):
        remedies.append("start ComfyUI with --lowvram (`fluxops comfy start --comfy-arg=--lowvram`)")
    if shape.gpu_processes:
        remedies.append("stop other processes on the GPU: " + "; ".join(shape.gpu_processes))
    elif shape.gpu_processes is None:
        remedies.append("stop other programs using the GPU" if on_gpu else "close programs that use system RAM")
    return remedies
_MODEL_LOAD_MARKERS = ("Could not detect model type", "VAE is invalid", "Error while deserializing header",
                       "corrupt", "Model in folder", "incomplete metadata")


def where(graph: Mapping[str, Any], node_id: str | None, class_type: str | None = None) -> str:
    node = graph.get(node_id or "", {}) if node_id is not None else {}
    meta = node.get("_meta") if isinstance(node, dict) else None
    title = meta.get("title") if isinstance(meta, dict) else None
    cls = class_type or (node.get("class_type") if isinstance(node, dict) else None) or "node"
    label = f"{title} ({cls} #{node_id})" if title and title != cls else f"{cls} #{node_id}"
    return label


def rejected(body: Any, graph: Mapping[str, Any]) -> FluxopsError:
    """A 400 answer to POST /prompt, every failing node listed readably."""
    error = body.get("error") if isinstance(body, dict) else None
    node_errors = body.get("node_errors") if isinstance(body, dict) else None
    lines = []
    for node_id, entry in (node_errors or {}).items():
        for reason in entry.get("errors", []):
            detail = f" ({reason['details']})" if reason.get("details") else ""
            lines.append(f"  - {where(graph, node_id, entry.get('class_type'))}: {reason.get('message')}{detail}")
    if isinstance(error, dict):
        head = str(error.get("message") or error.get("type") or "invalid prompt")
        if error.get("details") and not lines:
            head += f" ({error['details']})"
    else:
        head = str(error or "invalid prompt")
    message = f"ComfyUI refused the prompt: {head}" + ("\n" + "\n".join(lines) if lines else "")
    return FluxopsError("generate.rejected", message)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def is_out_of_memory(data: Mapping[str, Any]) -> bool:
    kind = str(data.get("exception_type") or "")
    text = str(data.get("exception_message") or "")
    return kind in OOM_TYPES or "out of memory" in text.lower() or "can't allocate memory" in text


def execution_failed(data: Mapping[str, Any], graph: Mapping[str, Any],
                     shape: RunShape | None = None) -> FluxopsError:
    """An execution_error message (its ``data``) as the error a user can act on."""
    node = where(graph, data.get("node_id"), data.get("node_type"))
    text = str(data.get("exception_message") or "")
    kind = str(data.get("exception_type") or "error")
    first = _first_line(text)
    if is_out_of_memory(data):
        on_gpu = "CUDA" in text or kind in OOM_TYPES
        remedies = oom_remedies(shape, on_gpu)
        what = "the GPU ran out of memory" if on_gpu else "the machine ran out of memory (RAM)"
        freed = " (fluxops sent ComfyUI's POST /free to release what it could)" if on_gpu else ""
        hint = ("try " + ", or ".join(remedies) + freed if remedies else
                "this prompt is already at batch 1, a small size and ComfyUI's low-VRAM mode, with no other "
                "process on the GPU: it needs a GPU with more memory (or ComfyUI with --cpu)")
        return FluxopsError("generate.out_of_memory", f"{node}: {what}: {first}", hint=hint)
    loader = str(data.get("node_type") or "").endswith("Loader") or "Loader" in node
    if loader or any(marker in text for marker in _MODEL_LOAD_MARKERS):
        files = [str(v[0]) for v in (data.get("current_inputs") or {}).values()
                 if isinstance(v, list) and v and str(v[0]).endswith((".safetensors", ".sft", ".ckpt"))]
        which = f" {', '.join(files)}" if files else " its model file"
        return FluxopsError("generate.model_load_failed", f"{node} could not load{which}: {first} ({kind})")
    return FluxopsError("generate.execution_failed", f"{node} failed: {first} ({kind})")
