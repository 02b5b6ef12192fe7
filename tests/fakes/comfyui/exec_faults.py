"""Execution behaviour and faults of the fake ComfyUI, from environment variables read at start; tests can
change them later through the test-only route ``POST /fake/faults`` (a JSON object of the same names in
lower case without the prefix, e.g. ``{"oom": true}``).

FAKE_COMFYUI_STEP_SECONDS        time per sampler step (default 0.005)
FAKE_COMFYUI_SECONDS_PER_IMAGE   a fixed time per image: the whole prompt takes this x batch_size (overrides
                                 the step time; used by the benchmark)
FAKE_COMFYUI_OOM                 "1": the sampler raises torch.OutOfMemoryError at its first step
FAKE_COMFYUI_OOM_FROM_PROMPT     N: like OOM, from the Nth prompt this server runs on (the ones before succeed)
FAKE_COMFYUI_LOAD_ERROR          "1": VAELoader fails like a placeholder file (RuntimeError "VAE is invalid")
FAKE_COMFYUI_DIE_AT_STEP         N: the process exits (code 1) at sampler step N: death mid-run
FAKE_COMFYUI_DROP_WS             "1": when a prompt starts, close every WebSocket and refuse new ones
FAKE_COMFYUI_DROP_WS_ONCE        "1": when the first prompt starts, close every WebSocket (new ones are accepted)
FAKE_COMFYUI_REFUSE_WS           N: the first N WebSocket connections answer 404 (later ones are accepted)
FAKE_COMFYUI_NO_WS               "1": /ws answers 404 (no WebSocket at all)
FAKE_COMFYUI_BLANK               "1": SaveImage writes flat single-colour images
FAKE_COMFYUI_BAD_JSON            "1": POST /prompt answers 200 with an HTML page instead of JSON (queues nothing),
                                 as a proxy or another program on the port would
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

PREFIX = "FAKE_COMFYUI_"


@dataclass
class ExecFaults:
    step_seconds: float = 0.005
    seconds_per_image: float | None = None
    oom: bool = False
    oom_from_prompt: int | None = None
    load_error: bool = False
    die_at_step: int | None = None
    drop_ws: bool = False
    drop_ws_once: bool = False
    no_ws: bool = False
    refuse_ws: int = 0
    blank: bool = False
    bad_json: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExecFaults:
        env = os.environ if env is None else env
        faults = cls()
        faults.update({f.name: env[PREFIX + f.name.upper()] for f in fields(cls)
                       if env.get(PREFIX + f.name.upper(), "").strip()})
        return faults

    def update(self, values: Mapping[str, Any]) -> None:
        for f in fields(self):
            if f.name not in values:
                continue
            raw = values[f.name]
            if raw is None:
                setattr(self, f.name, None)
            elif f.type in ("bool",):
                setattr(self, f.name, raw in (True, 1, "1", "true"))
            elif "int" in str(f.type):
                setattr(self, f.name, int(raw))
            else:
                setattr(self, f.name, float(raw))
