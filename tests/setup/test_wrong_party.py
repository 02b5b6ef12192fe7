"""Issue 14 item 9: messages blame the party at fault. A garbled local partial or a state file that lies is the
local partial's fault (discarded and fetched again), and a wrong blake3 in the cache never condemns good files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.setup.conftest import Scaled, kill_partway, wait_until
from tests.setup.test_setup_basic import assert_all_placed

pytestmark = pytest.mark.network


def _paths(scaled: Scaled, file_id: str) -> tuple[Path, Path]:
    sha = hashlib.sha256(scaled.files[file_id].read_bytes()).hexdigest()
    root = scaled.models / ".fluxops-partial"
    return root / f"{sha}.part", root / f"{sha}.state.json"


def _garble_kept_bytes(scaled: Scaled) -> None:
    scaled.hub.faults.rate = 400_000
    kill_partway(scaled, 700_000, FLUXOPS_CONNECTIONS="1", FLUXOPS_JOBS="1")
    wait_until(scaled.hub.quiet)
    scaled.hub.faults.rate = None
    part, state = _paths(scaled, "lora")
    start, end = json.loads(state.read_text())["written"][0]
    assert end - start > 2000
    with part.open("r+b") as fh:  # bytes the state vouches for, changed on disk (a bad disk, a stray write)
        fh.seek(start + 1000)
        fh.write(b"\xde\xad\xbe\xef")


def _state_that_lies(scaled: Scaled) -> None:
    part, state = _paths(scaled, "lora")
    size = scaled.files["lora"].stat().st_size
    part.parent.mkdir()
    part.write_bytes(b"\0" * size)
    state.write_text(json.dumps({"version": 1, "size": size, "boot_id": None, "written": [[0, size]],
                                 "synced": [[0, size]]}))  # "all there": none of it is


@pytest.mark.parametrize("make", [_garble_kept_bytes, _state_that_lies], ids=["garbled-partial", "lying-state"])
def test_a_bad_local_partial_is_blamed_discarded_and_fetched_again(cli, scaled: Scaled, make) -> None:
    make(scaled)
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert "served bytes" not in result.stderr  # the server is not blamed...
    assert "the partial download kept from an earlier run" in result.stderr  # ...the local partial is
    assert_all_placed(scaled)
    assert not _paths(scaled, "lora")[0].exists()


def test_a_wrong_blake3_in_the_cache_never_condemns_good_files(cli, scaled: Scaled, isolated) -> None:
    assert cli("setup", env=scaled.env()).returncode == 0
    cache = Path(isolated["FLUXOPS_STATE_DIR"]) / "cache" / "verify.json"
    data = json.loads(cache.read_text())
    assert len(data["blake3"]) == 3
    data["blake3"] = {sha: "0" * 64 for sha in data["blake3"]}  # a bug or a hand edit
    cache.write_text(json.dumps(data))
    full = cli("verify", "--full", "--json", env=scaled.env())
    assert full.returncode == 0, full.stdout
    files = json.loads(full.stdout)["data"]["files"]
    assert {f["state"] for f in files} == {"ok"} and {f["checked_by"] for f in files} == {"sha256"}
    again = cli("verify", "--full", "--json", env=scaled.env())  # the right blake3 is on record now
    assert {f["checked_by"] for f in json.loads(again.stdout)["data"]["files"]} == {"blake3"}
    setup = cli("setup", "--json", env=scaled.env())
    assert setup.returncode == 0 and {f["action"] for f in json.loads(setup.stdout)["data"]["files"]} == {"present"}
