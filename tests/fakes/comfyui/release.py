"""Which ComfyUI release the fake behaves like, from FAKE_COMFYUI_RELEASE (read at start):

"0.3.64" (default)  the recorded release every sample in tests/data/comfyui comes from
"0.38"              a current release: POST /prompt refuses a `prompt_id` that is not a lowercase UUID; the jobs
                    API (`/api/jobs`, `/api/jobs/{id}`, `POST /api/jobs/{id}/cancel`, routes_jobs.py);
                    `/system_stats` lists two CUDA devices; `/object_info` entries carry extra fields
                    (`search_aliases`, `essentials_category`, ...); the sampler sends a binary preview frame per
                    step (type 4 with JSON metadata to clients that negotiated `supports_preview_metadata`,
                    type 1 to the others, as server.py / protocol.py do)
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Mapping
from typing import Any

RECORDED = "0.3.64"
CURRENT = "0.38"
RELEASES = (RECORDED, CURRENT)
LOWERCASE_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# fields newer releases add to every /object_info entry
EXTRA_NODE_FIELDS: dict[str, Any] = {"search_aliases": [], "essentials_category": None, "api_node": False,
                                     "deprecated": False, "experimental": False, "is_input_list": False}
PREVIEW_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def release_from_env(env: Mapping[str, str] | None = None) -> str:
    value = (os.environ if env is None else env).get("FAKE_COMFYUI_RELEASE", "").strip() or RECORDED
    if value not in RELEASES:
        raise SystemExit(f"FAKE_COMFYUI_RELEASE={value!r}: one of {', '.join(RELEASES)}")
    return value


def bad_prompt_id(prompt_id: Any) -> dict[str, Any] | None:
    """The 400 body a current release answers for a prompt_id that is not a lowercase UUID."""
    if isinstance(prompt_id, str) and LOWERCASE_UUID.fullmatch(prompt_id):
        return None
    return {"error": {"type": "invalid_prompt_id", "message": "Invalid prompt_id",
                      "details": f"prompt_id must be a lowercase UUID, got {prompt_id!r}", "extra_info": {}},
            "node_errors": {}}


def preview_frame(with_metadata: bool, prompt_id: str, node: str) -> bytes:
    """A binary preview frame: type 1 (format 1 = JPEG) or type 4 (length-prefixed JSON metadata)."""
    if not with_metadata:
        return struct.pack(">II", 1, 1) + PREVIEW_JPEG
    meta = json.dumps({"node_id": node, "prompt_id": prompt_id, "display_node_id": node, "parent_node_id": None,
                       "real_node_id": node, "image_type": "image/jpeg"}).encode()
    return struct.pack(">II", 4, len(meta)) + meta + PREVIEW_JPEG
