"""Resume state: merged byte ranges, gaps, and what a state file from another file size means."""

from __future__ import annotations

import json
from pathlib import Path

from fluxops.hub.partial import PartPaths, RangeSet, boot_id, load_done, resume_point
from fluxops.hub.rangedget import backoff_seconds, retry_after_seconds


def test_ranges_merge_and_report_gaps() -> None:
    done = RangeSet([(100, 200), (0, 50), (50, 60), (190, 300)])
    assert done.as_list() == [[0, 60], [100, 300]]
    assert done.covered == 260 and done.prefix_end() == 60
    assert done.missing(400) == [(60, 100), (300, 400)]
    assert RangeSet([(10, 20)]).prefix_end() == 0


def test_state_of_another_size_or_beyond_the_part_is_ignored(tmp_path: Path) -> None:
    paths = PartPaths.for_sha(tmp_path, "c" * 64)
    paths.part.parent.mkdir(parents=True)
    paths.part.write_bytes(b"\0" * 1000)
    paths.state.write_text(json.dumps({"version": 1, "size": 1000, "boot_id": boot_id(),
                                       "written": [[0, 400], [600, 2000]], "synced": [[0, 100]]}))
    assert load_done(paths, 1000).as_list() == [[0, 400]]
    assert resume_point(tmp_path, "c" * 64, 1000) == 400
    assert load_done(paths, 999).covered == 0  # written for another file size: not trusted
    paths.state.write_text("not json")
    assert load_done(paths, 1000).covered == 0


def test_retry_after_and_backoff() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("999999") == 999999.0  # capped by the caller, at the stall timeout
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert retry_after_seconds("soon") is None
    assert backoff_seconds(1, None) == 0.5 and backoff_seconds(4, None) == 4.0
    assert backoff_seconds(20, None) == 30.0 and backoff_seconds(3, 7.0) == 7.0


def test_after_a_reboot_only_synced_ranges_are_trusted(tmp_path: Path) -> None:
    paths = PartPaths.for_sha(tmp_path, "d" * 64)
    paths.part.parent.mkdir(parents=True)
    paths.part.write_bytes(b"\0" * 1000)
    paths.state.write_text(json.dumps({"version": 1, "size": 1000, "boot_id": "another-boot",
                                       "written": [[0, 900]], "synced": [[0, 300]]}))
    assert load_done(paths, 1000).as_list() == [[0, 300]]  # the page cache did not survive the reboot
