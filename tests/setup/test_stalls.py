"""Issue 14 item 6: a server cannot park setup. A stalled connection is dropped after the stall timeout and
its segment asked for again; Retry-After is capped (and said); a server that sends a little then stalls on
every request ends in a clear error in bounded time. FLUXOPS_STALL_TIMEOUT is 1 s here (20 s by default)."""

from __future__ import annotations

import json

import pytest

from fluxops.hub.retries import MAX_STALLS
from tests.setup.conftest import Scaled
from tests.setup.test_setup_basic import assert_all_placed

pytestmark = pytest.mark.network

FAST = {"FLUXOPS_STALL_TIMEOUT": "1"}


def test_one_stall_is_dropped_after_the_stall_timeout_and_the_rest_fetched(cli, scaled: Scaled) -> None:
    scaled.hub.faults.stall_after = 100_000
    scaled.hub.faults.stall_seconds = 120  # far beyond the test's timeout: only the client can end it
    scaled.hub.faults.stall_once = True  # the bodies already sending stall too; later requests are served
    result = cli("setup", "--json", env=scaled.env(**FAST), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "no byte for 1 s" in result.stderr  # said, not silent
    assert_all_placed(scaled)


def test_retry_after_is_capped_and_said(cli, scaled: Scaled) -> None:
    scaled.hub.faults.status_once = 429
    scaled.hub.faults.retry_after = "86400"  # a day
    result = cli("setup", env=scaled.env(**FAST), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "asks to wait 86400 s (Retry-After); waiting 1 s at most (FLUXOPS_STALL_TIMEOUT)" in result.stderr
    assert_all_placed(scaled)


def test_a_server_that_sends_a_little_then_stalls_every_time_ends_in_a_clear_error(cli, scaled: Scaled) -> None:
    scaled.hub.faults.stall_after = 20_000  # every body: 20 kB, then silence (progress each time)
    scaled.hub.faults.stall_seconds = 120
    result = cli("setup", "--json", env=scaled.env(**FAST), timeout=90)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    errors = [f["error"] for f in json.loads(result.stdout)["data"]["files"] if f["error"]]
    assert errors and {e["code"] for e in errors} == {"download.failed"}
    assert all(f"stalled {MAX_STALLS + 1} times on one segment" in e["message"] for e in errors), errors
