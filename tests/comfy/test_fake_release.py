"""The fake ComfyUI behaves like a current release with FAKE_COMFYUI_RELEASE=0.38 (issue 14, item 16), and like
the recorded 0.3.64 without it."""

from __future__ import annotations

import json
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from fluxops.comfy.client import ComfyClient
from fluxops.generate.workflow import Overrides, build_graph, load_workflow, resolve_params
from tests.comfy.conftest import RELEASES

pytestmark = pytest.mark.network


def _graph(seed: int, steps: int = 3) -> dict[str, Any]:
    wf = load_workflow()
    graph = build_graph(wf, resolve_params(wf, "production", Overrides(steps=steps, width=64, height=64), seed))
    return graph


@pytest.mark.parametrize("release", RELEASES, indirect=True)
def test_what_differs_between_the_releases(start_fake: Any, release: str) -> None:
    _proc, port = start_fake()
    base = f"http://127.0.0.1:{port}"
    newer = release == "0.38"
    refused = requests.post(base + "/prompt", json={"prompt": _graph(1), "prompt_id": "Not-A-UUID"}, timeout=5)
    assert refused.status_code == (400 if newer else 200)
    upper = requests.post(base + "/prompt", json={"prompt": _graph(2), "prompt_id": str(uuid.uuid4()).upper()},
                          timeout=5)
    assert upper.status_code == (400 if newer else 200)
    if newer:
        assert refused.json()["error"]["type"] == "invalid_prompt_id"
    assert (requests.get(base + "/api/jobs", timeout=5).status_code == 200) is newer
    assert ComfyClient(base).has_jobs_api() is newer
    stats = requests.get(base + "/system_stats", timeout=5).json()
    assert [d["index"] for d in stats["devices"]] == ([0, 1] if newer else [0])
    info = requests.get(base + "/object_info/KSampler", timeout=5).json()["KSampler"]
    assert ("search_aliases" in info and "essentials_category" in info) is newer


@pytest.mark.parametrize("release", ["0.38"], indirect=True)
def test_jobs_api_and_preview_frames_of_a_current_release(start_fake: Any, release: str) -> None:
    _proc, port = start_fake(env={"FAKE_COMFYUI_STEP_SECONDS": "0.2"})
    base = f"http://127.0.0.1:{port}"
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws?clientId=me", timeout=10)
    ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for prompt_id, seed in ((first, 1), (second, 2)):
        answer = requests.post(base + "/prompt", json={"prompt": _graph(seed), "prompt_id": prompt_id,
                                                       "client_id": "me"}, timeout=5)
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 20
    preview = None
    while preview is None and time.monotonic() < deadline:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_BINARY:
            preview = data
    ws.close()
    assert preview is not None and struct.unpack(">I", preview[:4])[0] == 4  # negotiated: with metadata
    length = struct.unpack(">I", preview[4:8])[0]
    assert json.loads(preview[8:8 + length])["prompt_id"] == first
    assert requests.get(f"{base}/api/jobs/{first}", timeout=5).json()["status"] == "in_progress"
    assert requests.get(f"{base}/api/jobs/{second}", timeout=5).json()["status"] == "pending"
    assert requests.post(f"{base}/api/jobs/{second}/cancel", timeout=5).json()["status"] == "cancelled"
    assert requests.post(f"{base}/api/jobs/{first}/cancel", timeout=5).status_code == 200
    assert requests.get(f"{base}/api/jobs/{uuid.uuid4()}", timeout=5).status_code == 404
    listed = {}
    while time.monotonic() < deadline and listed.get(first) != "cancelled":
        listed = {j["id"]: j["status"] for j in requests.get(base + "/api/jobs", timeout=5).json()["jobs"]}
    assert listed == {first: "cancelled", second: "cancelled"}
    assert requests.post(f"{base}/api/jobs/{first}/cancel", timeout=5).status_code == 409


def test_release_is_checked(start_fake: Any, tmp_path: Path) -> None:
    proc, _port = start_fake(env={"FAKE_COMFYUI_RELEASE": "9.9"}, wait=False)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "FAKE_COMFYUI_RELEASE='9.9'" in out
