"""Ctrl-C: SIGINT to a running `fluxops generate` removes its queued prompts, interrupts its running one,
leaves other clients' prompts alone, and exits 130."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest

from tests.comfy.conftest import RELEASES
from tests.generate.conftest import Fake
from tests.helpers import spawn_fluxops, stopping, wait_until

pytestmark = pytest.mark.network


@pytest.mark.parametrize("release", RELEASES, indirect=True)
def test_ctrl_c_removes_only_its_own_prompts(isolated: dict[str, str], fake: Fake, tmp_path: Path,
                                             release: str) -> None:
    fake.faults(step_seconds=0.5)  # 5 s per prompt of ours: the interrupt ends the running one
    with stopping(spawn_fluxops("generate", "--port", str(fake.port), "--count", "3", "--output",
                                str(tmp_path / "out"))) as proc:
        wait_until(lambda: len(fake.get("/queue")["queue_pending"]) == 2)  # ours: 1 running, 2 pending
        graph = fake.received()["prompts"][0]["prompt"]
        graph["7"]["inputs"]["steps"] = 1
        other = fake.post("/prompt", {"prompt": graph, "client_id": "someone", "prompt_id": str(uuid.uuid4())})
        wait_until(lambda: len(fake.get("/queue")["queue_pending"]) == 3)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert "interrupted (Ctrl-C)" in stderr and "this run's 3 unfinished prompt(s)" in stderr
    ours = [body["prompt_id"] for body in fake.received()["prompts"][:3]]
    # a current release is asked through its jobs API; 0.3.64 through POST /queue delete and /interrupt
    assert fake.received()["cancel_requests"] == (ours if release == "0.38" else [])
    wait_until(lambda: ours[0] in fake.history())
    history = fake.history()
    assert history[ours[0]]["status"]["messages"][-1][0] == "execution_interrupted"
    assert ours[1] not in history and ours[2] not in history  # deleted before they ran
    wait_until(lambda: other["prompt_id"] in fake.history())  # the other client's prompt still runs
    assert fake.history()[other["prompt_id"]]["status"]["status_str"] == "success"
