"""Network faults during `fluxops setup`: drops, kill -9, 503/429, Range ignored, wrong bytes, expired CDN URLs."""

from __future__ import annotations

import hashlib
import json
import re
import signal

import pytest

from fluxops.hub.partial import resume_point
from tests.setup.conftest import GOOD_TOKEN, SEGMENT, Scaled, kill_partway, spawn, stopping, wait_until
from tests.setup.test_setup_basic import DESTS, assert_all_placed

pytestmark = pytest.mark.network


def test_dropped_connection_resumes_within_one_chunk(cli, scaled: Scaled) -> None:
    scaled.hub.faults.drop_after = 100_000  # mid-segment
    result = cli("setup", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert_all_placed(scaled)
    assert scaled.hub.faults.drop_after is None  # the fault fired
    assert scaled.hub.served.bytes <= scaled.total + SEGMENT  # only the read in flight was fetched twice


def test_killed_half_way_the_rerun_fetches_only_what_is_missing(cli, scaled: Scaled) -> None:
    lora = scaled.files["lora"]  # the biggest file: fetched first, over 2 connections
    scaled.hub.faults.rate = 400_000  # bytes/s per connection: slow enough to kill mid-way
    kill_partway(scaled, lora.stat().st_size * 0.6, FLUXOPS_CONNECTIONS="2", FLUXOPS_JOBS="1")
    wait_until(scaled.hub.quiet)  # bytes the server wrote before noticing the client died count too
    first = scaled.hub.served.bytes
    assert first < lora.stat().st_size  # really killed half-way through it
    sha = hashlib.sha256(lora.read_bytes()).hexdigest()
    kept = resume_point(scaled.models, sha, lora.stat().st_size)
    # Lost to the kill: at most each connection's read in flight and what arrived since the last record.
    assert kept > 0 and first - kept <= 2 * SEGMENT + 400_000
    scaled.hub.faults.rate = None
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert_all_placed(scaled)
    assert scaled.hub.served.bytes - first == scaled.total - kept  # the rerun fetched only what was missing
    files = {f["id"]: f for f in json.loads(result.stdout)["data"]["files"]}
    assert files["lora"]["resume_from"] == kept


@pytest.mark.parametrize("status", [503, 429])
def test_server_busy_once_is_retried(cli, scaled: Scaled, status: int) -> None:
    scaled.hub.faults.status_once = status
    scaled.hub.faults.retry_after = "1"
    result = cli("setup", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert scaled.hub.faults.status_once is None
    assert_all_placed(scaled)
    if status == 429:
        assert "connection(s)" in result.stderr  # backed off to fewer connections


def test_server_ignoring_range_falls_back_to_one_stream(cli, scaled: Scaled) -> None:
    scaled.hub.faults.ignore_range = True
    result = cli("setup", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert "ignores Range requests" in result.stderr
    assert_all_placed(scaled)


def test_range_ignored_and_the_single_stream_dropped_starts_it_again(cli, scaled: Scaled) -> None:
    scaled.hub.faults.ignore_range = True
    scaled.hub.faults.drop_after = 300_000
    result = cli("setup", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert scaled.hub.faults.drop_after is None
    assert_all_placed(scaled)


def _kept(scaled: Scaled, file_id: str) -> int:
    """Bytes of the file an interrupted run left for the next one to resume from."""
    data = scaled.files[file_id]
    return resume_point(scaled.models, hashlib.sha256(data.read_bytes()).hexdigest(), data.stat().st_size)


def test_range_ignored_on_resume_restarts_the_file_from_zero(cli, scaled: Scaled) -> None:
    scaled.hub.faults.rate = 400_000
    kill_partway(scaled, 600_000, FLUXOPS_CONNECTIONS="2", FLUXOPS_JOBS="1")
    wait_until(scaled.hub.quiet)
    lora_size, kept = scaled.files["lora"].stat().st_size, _kept(scaled, "lora")
    assert 0 < kept < lora_size  # a resume point the rerun cannot use
    before = scaled.hub.served.by_path["diffusion_pytorch_model.safetensors"]
    scaled.hub.faults.rate = None
    scaled.hub.faults.ignore_range = True
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert_all_placed(scaled)
    assert "ignores Range requests: one stream from the start" in result.stderr
    files = {f["id"]: f for f in json.loads(result.stdout)["data"]["files"]}
    assert files["lora"]["resume_from"] == kept  # it meant to resume...
    refetched = scaled.hub.served.by_path["diffusion_pytorch_model.safetensors"] - before
    assert refetched >= lora_size  # ...and fetched the whole file again, from byte 0


def test_wrong_bytes_are_refused_and_nothing_is_placed(cli, scaled: Scaled) -> None:
    scaled.hub.faults.wrong_bytes = True
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 1
    files = json.loads(result.stdout)["data"]["files"]
    assert {f["action"] for f in files} == {"failed"}
    assert {f["error"]["code"] for f in files} == {"download.hash_mismatch"}
    for dest in DESTS.values():
        assert not scaled.placed(dest).exists()
    assert not list((scaled.models / ".fluxops-partial").glob("*.part"))  # worthless bytes are not kept
    assert "nothing was placed" in result.stderr


def test_expired_cdn_url_is_resolved_again_without_the_token(cli, scaled: Scaled) -> None:
    scaled.hub.faults.cdn_403_once = True
    result = cli("setup", env=scaled.env(HF_TOKEN=GOOD_TOKEN))
    assert result.returncode == 0, result.stderr
    assert "resolving it again" in result.stderr
    assert_all_placed(scaled)
    assert not any(scaled.hub.cdn_auth_seen)  # the token went to the Hub only


def test_ctrl_c_exits_130_and_says_what_is_kept(scaled: Scaled) -> None:
    scaled.hub.faults.rate = 300_000
    with stopping(spawn(scaled, FLUXOPS_CONNECTIONS="2")) as proc:
        wait_until(lambda: scaled.hub.served.bytes >= 1_000_000)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert re.search(r"interrupted: \d+(\.\d)? (B|KiB|MiB|GiB) kept in", stderr) and "fluxops setup" in stderr
    states = list((scaled.models / ".fluxops-partial").glob("*.state.json"))
    assert states
    done = sum(b - a for s in states for a, b in json.loads(s.read_text())["synced"])
    assert done > 0


def test_partial_is_named_by_sha256_and_survives_a_source_change(cli, scaled: Scaled) -> None:
    scaled.hub.faults.rate = 400_000
    kill_partway(scaled, 500_000, FLUXOPS_CONNECTIONS="1", FLUXOPS_JOBS="1")
    wait_until(scaled.hub.quiet)
    parts = {p.name.split(".")[0] for p in (scaled.models / ".fluxops-partial").glob("*.part")}
    shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in scaled.files.values()}
    assert parts and parts <= shas
    kept = _kept(scaled, "lora")
    assert kept > 0
    # The same bytes move to another repo under another name, and the manifest follows them.
    scaled.hub.add("someone/turbo-mirror", "turbo.safetensors", scaled.files["lora"])
    old = 'repo = "alimama-creative/FLUX.1-Turbo-Alpha"\npath = "diffusion_pytorch_model.safetensors"'
    text = scaled.manifest.read_text()
    assert old in text
    scaled.manifest.write_text(text.replace(old, 'repo = "someone/turbo-mirror"\npath = "turbo.safetensors"'))
    scaled.hub.faults.rate = None
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert_all_placed(scaled)
    lora = {f["id"]: f for f in json.loads(result.stdout)["data"]["files"]}["lora"]
    assert lora["source"] == "someone/turbo-mirror" and lora["resume_from"] == kept
    assert scaled.hub.served.by_path["turbo.safetensors"] == scaled.files["lora"].stat().st_size - kept
