"""The fake ComfyUI speaks the recorded protocol: message order and routing, history, /view, queue and faults."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import pytest
import requests
import websocket
from PIL import Image

from fluxops.generate.workflow import Overrides, build_graph, load_workflow, resolve_params
from tests.generate.conftest import DATA, Fake, without_tracebacks

pytestmark = pytest.mark.network


def production_graph(seed: int = 1, **overrides: Any) -> dict[str, Any]:
    wf = load_workflow()
    return build_graph(wf, resolve_params(wf, "production", Overrides(**overrides), seed))


def collect(ws: websocket.WebSocket, prompt_id: str, timeout: float = 20) -> list[dict[str, Any]]:
    """Messages until `executing` with node null for prompt_id."""
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv())
        messages.append(message)
        data = message["data"]
        if message["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
            return messages
    raise AssertionError("no end of prompt")


def test_success_sequence_matches_the_recording(fake: Fake) -> None:
    sid = uuid.uuid4().hex
    ws = websocket.create_connection(f"ws://127.0.0.1:{fake.port}/ws?clientId={sid}", timeout=10)
    try:
        answer = fake.post("/prompt", {"prompt": production_graph(steps=4, width=256, height=128), "client_id": sid})
        messages = collect(ws, answer["prompt_id"])
    finally:
        ws.close()
    kinds = [m["type"] for m in messages]
    assert kinds[:5] == ["status", "status", "status", "execution_start", "execution_cached"]
    assert messages[0]["data"]["sid"] == sid
    assert kinds[-3:] == ["execution_success", "status", "executing"]
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [(i, 4, "7") for i in range(1, 5)]
    executing = [m["data"]["node"] for m in messages if m["type"] == "executing"]
    assert executing[-1] is None and "7" in executing and executing.index("7") < executing.index("10")
    [executed] = [m["data"] for m in messages if m["type"] == "executed"]
    assert executed["output"] == {"images": [{"filename": "production_photo__00001_.png", "subfolder": "",
                                              "type": "output"}]}
    states = [m for m in messages if m["type"] == "progress_state"]
    assert states and states[-1]["data"]["nodes"]["10"]["state"] == "finished"
    entry = fake.get(f"/history/{answer['prompt_id']}")[answer["prompt_id"]]
    assert entry["status"]["status_str"] == "success" and entry["prompt"][1] == answer["prompt_id"]
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached",
                                                            "execution_success"]
    image = requests.get(f"{fake.url}/view", params={"filename": "production_photo__00001_.png",
                                                     "subfolder": "", "type": "output"}, timeout=10)
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"] == 'filename="production_photo__00001_.png"'
    with Image.open(io.BytesIO(image.content)) as png:
        assert png.size == (256, 128)


def test_identical_resubmission_is_cached_and_points_at_the_old_file(fake: Fake) -> None:
    sid = uuid.uuid4().hex
    ws = websocket.create_connection(f"ws://127.0.0.1:{fake.port}/ws?clientId={sid}", timeout=10)
    try:
        first = fake.post("/prompt", {"prompt": production_graph(width=64, height=64), "client_id": sid})
        collect(ws, first["prompt_id"])
        second = fake.post("/prompt", {"prompt": production_graph(width=64, height=64), "client_id": sid})
        messages = collect(ws, second["prompt_id"])
    finally:
        ws.close()
    cached = next(m["data"]["nodes"] for m in messages if m["type"] == "execution_cached")
    assert len(cached) == 10 and not [m for m in messages if m["type"] == "progress"]
    [executed] = [m["data"] for m in messages if m["type"] == "executed"]
    assert executed["output"]["images"][0]["filename"] == "production_photo__00001_.png"


def test_without_client_id_only_progress_is_broadcast(fake: Fake) -> None:
    ws = websocket.create_connection(f"ws://127.0.0.1:{fake.port}/ws?clientId=watcher", timeout=10)
    try:
        answer = fake.post("/prompt", {"prompt": production_graph(steps=2, width=64, height=64)})
        deadline = time.monotonic() + 10
        while answer["prompt_id"] not in fake.history():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ws.settimeout(0.5)
        kinds = []
        try:
            while True:
                kinds.append(json.loads(ws.recv())["type"])
        except websocket.WebSocketTimeoutException:
            pass
    finally:
        ws.close()
    assert answer["prompt_id"] in fake.history()
    assert set(kinds) <= {"status", "progress", "progress_state"} and "progress_state" in kinds


def test_http_error_shapes(fake: Fake) -> None:
    no_prompt = requests.post(f"{fake.url}/prompt", json={"client_id": "x"}, timeout=10)
    assert no_prompt.status_code == 400 and no_prompt.json()["error"]["type"] == "no_prompt"
    not_json = requests.post(f"{fake.url}/prompt", data="this is not json", timeout=10)
    assert not_json.status_code == 500 and not_json.text == "500 Internal Server Error\n\nServer got itself in trouble"
    assert fake.get("/history/00000000-0000-0000-0000-000000000000") == {}
    assert requests.get(f"{fake.url}/view", params={"filename": "nope.png"}, timeout=10).status_code == 404
    assert requests.get(f"{fake.url}/view", params={"filename": "../x.png"}, timeout=10).status_code == 400
    assert requests.get(f"{fake.url}/view", params={"filename": "a.png", "type": "bad"}, timeout=10).status_code == 400
    assert requests.get(f"{fake.url}/view", params={"filename": "a.png", "subfolder": "../../"},
                        timeout=10).status_code == 403


def test_queue_delete_leaves_the_running_prompt(fake: Fake) -> None:
    fake.faults(step_seconds=0.5)  # 5 s per prompt: ample time for the checks; the interrupt ends it
    ids = [fake.post("/prompt", {"prompt": production_graph(seed=s, width=64, height=64)})["prompt_id"]
           for s in range(3)]
    time.sleep(0.3)
    queue = fake.get("/queue")
    assert [item[1] for item in queue["queue_running"]] == [ids[0]]
    fake.post("/queue", {"delete": ids})  # only pending ones go
    assert fake.get("/queue")["queue_pending"] == [] and fake.get("/queue")["queue_running"]
    fake.post("/interrupt", {"prompt_id": "not-running"})  # a no-op
    time.sleep(0.3)
    assert fake.get("/queue")["queue_running"]
    fake.post("/interrupt", {"prompt_id": ids[0]})
    deadline = time.monotonic() + 10
    while ids[0] not in fake.history():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    entry = fake.history()[ids[0]]
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}
    last = entry["status"]["messages"][-1]
    assert last[0] == "execution_interrupted" and last[1]["node_type"] == "KSampler"
    assert ids[1] not in fake.history()


def test_recorded_invalid_posts_get_the_recorded_answers_over_http(fake: Fake) -> None:
    recorded = json.loads((DATA / "invalid_prompts.json").read_text())
    for name, case in recorded.items():
        if not isinstance(case, dict) or "request" not in case or case["request"]["json"] is None:
            continue
        answer = requests.post(f"{fake.url}/prompt", json=case["request"]["json"], timeout=10)
        assert answer.status_code == case["status"], name
        assert answer.headers["Content-Type"] == case["content_type"], name
        body = answer.json()
        if case["status"] == 200:
            assert body["node_errors"] == {} and isinstance(body["number"], int)
        else:
            assert without_tracebacks(body) == without_tracebacks(case["body"]), name
