"""The fake ComfyUI validates like the real one: every recorded invalid POST gets the recorded 400 body."""

from __future__ import annotations

import copy
import json

import pytest

from tests.fakes.comfyui.validation import Validator
from tests.generate.conftest import DATA, without_tracebacks

RECORDED = json.loads((DATA / "invalid_prompts.json").read_text())
SPECS = json.loads((DATA / "object_info_nodes.json").read_text())
CASES = [name for name, case in RECORDED.items()
         if isinstance(case, dict) and "request" in case and case["status"] == 400
         and "prompt" in (case["request"]["json"] or {})]  # no_prompt is the route's answer: see test_fake_server


@pytest.mark.parametrize("name", CASES)
def test_recorded_400_bodies(name: str) -> None:
    case = RECORDED[name]
    body = copy.deepcopy(case["request"]["json"])
    ok, error, outputs, node_errors = Validator(SPECS).validate_prompt(body["prompt"])
    assert not ok and outputs == []
    assert without_tracebacks({"error": error, "node_errors": node_errors}) == without_tracebacks(case["body"])


def test_coercions_are_accepted_and_stored_converted() -> None:
    case = RECORDED["coercions_accepted_200"]
    prompt = copy.deepcopy(case["request"]["json"]["prompt"])
    ok, error, outputs, node_errors = Validator(SPECS).validate_prompt(prompt)
    assert ok and error is None and outputs == ["10"] and node_errors == {}
    assert prompt["7"]["inputs"] == RECORDED["coercions_accepted_200_history_prompt_inputs_7"]
