"""A dropped WebSocket is reopened with the same client id, so progress events keep coming (issue 14, item 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.comfy.conftest import RELEASES
from tests.generate.conftest import Fake

pytestmark = pytest.mark.network


@pytest.mark.parametrize("release", RELEASES, indirect=True)
def test_a_dropped_websocket_is_reconnected_with_the_same_client_id(generate: Any, fake: Fake) -> None:
    fake.faults(drop_ws_once=True, step_seconds=0.02)
    result = generate("--count", "2", "--seed", "50", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert data["transport"] == "websocket" and data["reconnects"] == 1
    assert "reconnected with the same client id" in result.stderr
    clients = fake.received()["ws_clients"]
    assert len(clients) == 2 and clients[0] == clients[1] == fake.received()["prompts"][0]["client_id"]
    # the second prompt ran entirely after the drop: its sampler steps arrived on the new socket
    second = json.loads(Path(data["images"][1]["sidecar"]).read_text())
    assert second["timings"]["seconds_per_step"] is not None
    assert len(data["images"]) == 2


def test_a_run_that_had_to_poll_goes_back_to_the_websocket(generate: Any, fake: Fake) -> None:
    fake.faults(refuse_ws=1, step_seconds=0.1)  # the first connection is refused; 1 s per prompt
    result = generate("--count", "3", "--seed", "60", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert "WebSocket unavailable: following the run by polling" in result.stderr
    assert "WebSocket reopened: following the run on it again" in result.stderr
    assert data["transport"] == "websocket" and data["reconnects"] == 1 and len(data["images"]) == 3
    last = json.loads(Path(data["images"][2]["sidecar"]).read_text())
    assert last["timings"]["seconds_per_step"] is not None  # its steps came over the reopened socket
