"""Issue 14 item 5: each file's verify verdict is saved when the file is placed, so a kill -9 later in the run
does not cost a re-hash of what was already placed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.setup.conftest import Scaled, spawn, stopping, wait_until
from tests.setup.test_setup_basic import DESTS

pytestmark = pytest.mark.network


def test_a_placed_file_keeps_its_verdict_after_a_kill(cli, scaled: Scaled, isolated) -> None:
    lora = scaled.placed(DESTS["lora"])  # the biggest file: fetched first with one file at a time
    cache = Path(isolated["FLUXOPS_STATE_DIR"]) / "cache" / "verify.json"
    scaled.hub.faults.rate = 2_000_000
    with stopping(spawn(scaled, FLUXOPS_JOBS="1", FLUXOPS_CONNECTIONS="2")) as setup:
        wait_until(lora.exists)
        scaled.hub.faults.rate = 20_000  # the next files crawl: the kill lands while they download
        wait_until(cache.exists)
    assert setup.returncode == -9
    assert not scaled.placed(DESTS["vae"]).exists()  # killed before the run ended
    entries = json.loads(cache.read_text())["entries"]
    sha = hashlib.sha256(scaled.files["lora"].read_bytes()).hexdigest()
    assert entries[str(lora)]["sha256"] == sha
    scaled.hub.faults.rate = None
    result = cli("verify", "--json", env=scaled.env())
    lora_verdict = next(f for f in json.loads(result.stdout)["data"]["files"] if f["id"] == "lora")
    assert lora_verdict["state"] == "ok" and lora_verdict["checked_by"] == "cache"  # not hashed again
