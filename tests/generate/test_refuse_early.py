"""Values that can never be valid are refused from the node ranges fluxops ships, before any server is
contacted; a run of more than a day asks for --yes; an output folder that cannot be written is found before
anything is queued (issue 14, item 10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.generate.conftest import Fake
from tests.helpers import free_port

pytestmark = pytest.mark.network


@pytest.mark.parametrize(("args", "text"), [
    (["--steps", "-3"], "--steps -3 is below the minimum of 1"),
    (["--cfg", "1000"], "--cfg 1000.0 is above the maximum of 100.0"),
    (["--cfg", "nan"], "--cfg nan is not a finite number"),
    (["--width", "7"], "--width 7 is below the minimum of 16"),
    (["--width", "0"], "--width 0 is below the minimum of 16"),
    (["--batch", "0"], "--batch 0 is below the minimum of 1"),
    (["--count", "0"], "--count"),
])
def test_impossible_values_are_refused_without_a_server(cli: Any, tmp_path: Path, args: list[str],
                                                        text: str) -> None:
    # nothing listens on this port and no ComfyUI folder is known: contacting a server would fail with exit 1
    result = cli("generate", "--port", str(free_port()), "--output", str(tmp_path / "out"), *args)
    assert result.returncode == 2, result.stderr
    assert text in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_more_than_a_day_of_work_needs_yes(cli: Any, tmp_path: Path) -> None:
    result = cli("generate", "--port", str(free_port()), "--output", str(tmp_path / "out"), "--count", "200000",
                 "--json")
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "generate.needs_yes" and "--yes" in error["hint"]
    assert "--count 200000" in error["message"] and "days of work" in error["message"]


def test_a_large_but_sane_count_does_not_ask(generate: Any, fake: Fake) -> None:
    fake.faults(step_seconds=0)
    result = generate("--count", "3", "--steps", "1", "--width", "64", "--height", "64")
    assert result.returncode == 0, result.stderr


def test_the_server_specs_still_apply(generate: Any, fake: Fake) -> None:
    result = generate("--sampler", "euler_a")  # choices are the server's to decide
    assert result.returncode == 2 and "unknown sampler 'euler_a'" in result.stderr
    assert fake.received()["count"] == 0


def test_unwritable_output_is_found_before_anything_is_queued(cli: Any, fake: Fake, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("generate", "--port", str(fake.port), "--output", str(blocker / "out"), "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "generate.save_failed" and "nothing was queued" in error["message"]
    assert fake.received()["count"] == 0
