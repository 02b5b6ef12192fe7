"""Why a ComfyUI that exited during start-up failed, read from the end of its log (what ComfyUI's `main.py`
prints, https://github.com/comfyanonymous/ComfyUI/blob/master/main.py, and launcher failures seen on real
servers). Non-fatal import errors (e.g. torchaudio) appear in every healthy start-up log, so only the LAST
exception line of the log decides, plus argparse's usage error."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)|AssertionError)(?::\s*(.*))?$")


@dataclass(frozen=True)
class Cause:
    code: str
    message: str
    hint: str | None = None  # None: the registry's hint for `code`


def _last_exception(lines: Sequence[str]) -> tuple[str, str] | None:
    for line in reversed(lines):
        match = _EXCEPTION_LINE.match(line.strip())
        if match:
            return match.group(1), match.group(2) or ""
    return None


def classify(lines: Sequence[str], returncode: int | None, python: str = "python") -> Cause:
    """The classified cause of an early exit from the log's last lines."""
    for line in reversed(lines):
        if ": error: " in line and ("unrecognized arguments" in line or "argument" in line):
            return Cause(
                "comfy.bad_argument", f"ComfyUI rejected its command line: {line.split(': error: ')[1]}"
            )
    found = _last_exception(lines)
    if found is None:
        return Cause("comfy.start_failed", f"ComfyUI exited during start-up (exit code {returncode})")
    kind, text = found
    short = kind.rsplit(".", 1)[-1]
    if "address already in use" in text or "Errno 98" in text or "Errno 48" in text or "10048" in text:
        return Cause("comfy.port_in_use", f"ComfyUI could not listen: {text}")
    if short == "ModuleNotFoundError" or short == "ImportError":
        module = re.search(r"No module named '([^']+)'", text)
        name = module.group(1) if module else text
        return Cause(
            "comfy.missing_module",
            f"ComfyUI's Python lacks a module: {name}",
            f"install ComfyUI's requirements into its Python: {python} -m pip install -r "
            "requirements.txt (in the ComfyUI folder)",
        )
    if "CUDA" in text or "cuda" in text or "NVIDIA driver" in text or short == "OutOfMemoryError":
        return Cause("comfy.cuda_error", f"ComfyUI failed to start on the GPU: {kind}: {text}")
    if short == "FileNotFoundError" and "custom_nodes" in text:
        return Cause("comfy.custom_nodes_missing", f"ComfyUI needs a custom_nodes folder: {text}")
    if (short == "AttributeError" and "split" in text) or kind.startswith("yaml."):
        return Cause(
            "comfyui.extra_paths_invalid", f"ComfyUI could not read an extra_model_paths yaml: {kind}: {text}"
        )
    return Cause(
        "comfy.start_failed", f"ComfyUI exited during start-up (exit code {returncode}): {kind}: {text}"
    )
