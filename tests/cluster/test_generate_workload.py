"""The parts of `generate --cluster` that need no Ray cluster: prompts files, job identity across reruns, the run
log read back, the watchdog that stands in for Linux's parent-death signal elsewhere, and option misuse."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from fluxops.cluster.runlog import RunLog, read_past
from fluxops.cluster.workload import Entry, build_jobs, read_prompts
from fluxops.errors import FluxopsError
from fluxops.generate.workflow import Overrides
from tests.helpers import fluxops_env, stop, wait_until


def test_a_text_file_is_one_prompt_per_line_without_blanks_or_comments(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("# catalogue, autumn\na red chair\n\n  a blue lamp  \n# done\n")
    entries = read_prompts(path, 2, Overrides(steps=9), "fast")
    assert [(e.line, e.overrides.prompt, e.overrides.steps, e.preset, e.count) for e in entries] == [
        (2, "a red chair", 9, "fast", 2), (4, "a blue lamp", 9, "fast", 2)]
    jobs = build_jobs(entries, None, None)
    assert len(jobs) == 4 and len({job.seed for job in jobs}) == 4 and not any(job.error for job in jobs)


def test_jsonl_lines_carry_the_command_lines_overrides_and_a_bad_line_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "a", "seed": 5, "steps": 4, "preset": "quality"}\nnot json\n'
                    '{"prompt": "b", "colour": "red"}\n{"prompt": "c", "width": 0}\n')
    jobs = build_jobs(read_prompts(path, 1, Overrides(cfg=1.0), "fast"), None, None)
    assert jobs[0].seed == 5 and jobs[0].params is not None
    assert (jobs[0].params.steps, jobs[0].params.cfg) == (4, 1.0)
    assert "not JSON" in (jobs[1].error or "") and "colour" in (jobs[2].error or "")
    assert (jobs[3].error or "").startswith("line 4: ") and jobs[3].graph == {}


def test_more_than_a_day_for_one_prompt_needs_yes() -> None:
    entries = [Entry(0, Overrides(prompt="x", width=16384, height=16384, steps=50), count=200)]
    with pytest.raises(FluxopsError) as err:
        build_jobs(entries, None, None)
    assert err.value.code == "generate.needs_yes"
    assert len(build_jobs(entries, None, None, yes=True)) == 200


def test_an_empty_or_missing_prompts_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    for path in (tmp_path / "empty.txt", tmp_path / "missing.txt"):
        with pytest.raises(FluxopsError) as err:
            read_prompts(path, 1, Overrides(), "production")
        assert err.value.code == "cluster.prompts_unreadable" and err.value.exit_code == 2


def test_job_identity_and_prompt_ids_survive_a_rerun_and_seeds_are_reused(tmp_path: Path) -> None:
    entries = [Entry(0, Overrides(prompt="x"), count=3)]
    first, second = build_jobs(entries, None, None), build_jobs(entries, None, None)
    assert [j.key for j in first] == [j.key for j in second]
    assert all(j.prompt_id == str(uuid.UUID(j.prompt_id)) for j in first)  # lowercase UUIDs
    log = RunLog(tmp_path)
    log.append({"job": first[0].key, "seed": first[0].seed, "status": "done"})
    log.append({"job": first[1].key, "seed": first[1].seed, "status": "failed", "error": "boom"})
    (tmp_path / "run.jsonl").open("a").write('{"job": "cut sho')  # a line a crash cut short
    past = read_past(tmp_path)
    assert set(past.done) == {first[0].key}
    rerun = build_jobs(entries, None, None, past.seeds)
    assert [j.seed for j in rerun[:2]] == [j.seed for j in first[:2]]
    line = json.loads((tmp_path / "run.jsonl").read_text().splitlines()[0])
    assert list(line) == ["job", "prompt", "seed", "status", "node", "worker", "attempts", "seconds", "image",
                          "error"]


def test_the_watchdog_kills_its_command_when_the_parent_is_gone(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    watched = subprocess.Popen([sys.executable, "-m", "fluxops.cluster.watchdog", str(parent.pid), sys.executable,
                                "-c", "import time; time.sleep(60)"], env=fluxops_env())
    try:
        wait_until(lambda: psutil.Process(watched.pid).children(), 30, "the watched command started")
        child = psutil.Process(watched.pid).children()[0]
        stop(parent)
        wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 30,
                   "the command killed")
        assert watched.wait(timeout=30) != 0
    finally:
        stop(parent)
        stop(watched)


def test_cluster_only_options_need_cluster_and_single_box_ones_refuse_it(
        cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("a\n")
    alone = cli("generate", "--prompts", str(tmp_path / "p.txt"))
    assert alone.returncode == 2 and "--prompts goes with --cluster" in alone.stderr
    check = cli("generate", "--cluster", "--check")
    assert check.returncode == 2 and "--check does not go with --cluster" in check.stderr
