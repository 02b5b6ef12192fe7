"""What a run reports about itself: the images saved before a failure (item 11), prompts ComfyUI answered from
its cache (item 12), the model hashes the sidecar may claim (item 13), the out-of-memory hint (item 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.generate.conftest import Fake

pytestmark = pytest.mark.network


def test_a_run_failing_part_way_still_reports_the_images_it_saved(generate: Any, fake: Fake) -> None:
    fake.faults(oom_from_prompt=2)
    result = generate("--count", "3", "--seed", "10", "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "generate.out_of_memory"
    [image] = doc["data"]["images"]
    assert Path(image["path"]).name == "production_photo_10.png" and Path(image["path"]).is_file()
    assert Path(image["sidecar"]).is_file() and doc["data"]["seeds"] == [10, 11, 12]
    assert fake.get("/queue")["queue_pending"] == []  # the rest was withdrawn


def test_human_output_lists_the_images_saved_before_the_failure(generate: Any, fake: Fake) -> None:
    fake.faults(oom_from_prompt=3)
    result = generate("--count", "3", "--seed", "30")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].endswith("production_photo_30.png  (seed 30)")
    assert lines[1].endswith("production_photo_31.png  (seed 31)")
    assert "2 images saved before the run failed" in result.stdout
    assert "error: Sampler (KSampler #7): the GPU ran out of memory" in result.stderr


def test_a_failure_before_any_image_claims_none(generate: Any, fake: Fake) -> None:
    fake.faults(oom=True)
    result = generate("--count", "2", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["data"]["images"] == []
