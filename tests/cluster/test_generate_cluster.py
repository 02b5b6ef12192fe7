"""`fluxops generate --cluster` through the real CLI, against a real Ray cluster of two nodes on 127.0.0.1 whose
workers each start the fake ComfyUI as their own server: every job done once, faults (a ComfyUI SIGKILLed, a
node removed), a bad value failing alone, Ctrl-C, the rerun that skips finished jobs, nothing left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cluster.conftest import RayCluster, start_cluster
from tests.fakes.comfyui.install import make_comfyui_dir
from tests.helpers import REPO, live_process, spawn_fluxops, stop, wait_until

# Ray itself kills a worker's child processes when the worker exits (where it can): turned off, so that only
# fluxops's own parent-death signal stands between a lost worker and a ComfyUI left holding its GPU.
RAY_LEAVES_CHILDREN = {"RAY_kill_child_processes_on_worker_exit": "0",
                       "RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper": "0"}
BOUND = 60.0  # seconds: upper bounds for a run to get somewhere, not timing expectations


@pytest.fixture
def comfyui(tmp_path: Path) -> Path:
    return make_comfyui_dir(tmp_path / "ComfyUI")


@pytest.fixture
def slow_cluster() -> Iterator[Callable[..., RayCluster]]:
    """A cluster whose fake ComfyUIs take `seconds` per image (set before the nodes start: their workers and
    the servers they start inherit it), shut down after the test."""
    saved, started = dict(os.environ), []

    def start(gpus: tuple[int, ...] = (1, 1), seconds: float = 0.4) -> RayCluster:
        rc = start_cluster(gpus, env={"FAKE_COMFYUI_SECONDS_PER_IMAGE": str(seconds), **RAY_LEAVES_CHILDREN})
        started.append(rc)
        return rc

    yield start
    for rc in started:
        rc.cluster.shutdown()
    os.environ.clear()
    os.environ.update(saved)


def _args(rc: RayCluster, comfyui: Path, out: Path, *more: str) -> list[str]:
    return ["generate", "--cluster", "--ray-address", rc.address, "--comfyui-dir", str(comfyui),
            "--output", str(out), *more]


def _run(cli: Callable[..., subprocess.CompletedProcess[str]], *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, timeout=120)


def _lines(out: Path) -> list[dict[str, Any]]:
    path = out / "run.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _no_worker_processes() -> bool:
    for proc in psutil.process_iter(["cmdline"]):
        if any("GpuWorker" in part for part in proc.info["cmdline"] or []):
            return False
    return True


def _no_fake_comfyui(pid_dir: Path) -> bool:
    return all(live_process(json.loads(p.read_text())) is None for p in pid_dir.glob("*.json"))


def _server_of(line: dict[str, Any], pid_dir: Path) -> dict[str, Any]:
    """The pid record of the fake ComfyUI that made a job's image (by the port in its sidecar)."""
    url = json.loads(Path(line["image"]).with_suffix(".json").read_text())["server"]["url"]
    port = url.rsplit(":", 1)[1]
    records = [json.loads(p.read_text()) for p in pid_dir.glob("*.json")]
    return next(r for r in records if r["argv"][r["argv"].index("--port") + 1] == port)


def _fault_mid_run(rc: RayCluster, comfyui: Path, out: Path, err: Path, after: int,
                   fault: Callable[[subprocess.Popen[bytes]], None], *more: str) -> subprocess.Popen[bytes]:
    """Run generate --cluster in the background; once `after` jobs have ended, do `fault` (given the child), then
    let it finish (the child is always stopped)."""
    proc = spawn_fluxops(*_args(rc, comfyui, out, *more), stderr=err)
    try:
        wait_until(lambda: len(_lines(out)) >= after, BOUND, f"{after} job(s) ended")
        fault(proc)
        proc.wait(timeout=BOUND * 2)
    finally:
        stop(proc)
    return proc


def _assert_nothing_left(pid_dir: Path) -> None:
    wait_until(lambda: _no_fake_comfyui(pid_dir), BOUND, "every worker's ComfyUI stopped")
    wait_until(_no_worker_processes, BOUND, "every worker actor gone")


def _assert_each_done_once(out: Path, jobs: int) -> list[dict[str, Any]]:
    lines = _lines(out)
    assert sorted(line["status"] for line in lines) == ["done"] * jobs
    assert len({line["job"] for line in lines}) == jobs
    images = sorted(out.glob("*.png"))
    assert len(images) == jobs
    for image in images:
        sidecar = json.loads(image.with_suffix(".json").read_text())
        assert {"node", "worker", "attempt", "prompt_id", "seed"} <= set(sidecar)
    assert len({json.loads(i.with_suffix(".json").read_text())["prompt_id"] for i in images}) == jobs
    return lines


def test_every_job_once_the_rerun_skips_them_and_a_bad_value_fails_alone(
        ray_cluster: RayCluster, cli: Callable[..., subprocess.CompletedProcess[str]], comfyui: Path,
        tmp_path: Path, no_leftover_processes: Path) -> None:
    out = tmp_path / "out"
    first = _run(cli, *_args(ray_cluster, comfyui, out, "--prompt", "a red bicycle", "--count", "6", "--json",
                             "--comfy-arg=--disable-metadata", "--comfy-arg", "--preview-size 256",
                             "--comfyui-python", str(comfyui / "venv" / "bin" / "python")))
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["ok"] and doc["data"]["totals"]["done"] == 6
    _assert_each_done_once(out, 6)  # (the first worker ready may do them all: the fake is quick here)
    assert {w["state"] for w in doc["data"]["workers"]} == {"stopped"} and len(doc["data"]["workers"]) == 4
    servers = {json.loads(p.read_text())["pid"]: json.loads(p.read_text())["argv"]
               for p in no_leftover_processes.glob("*.json")}
    outputs = {argv[argv.index("--output-directory") + 1] for argv in servers.values()}
    # Each server its own output folder. A worker still starting when the quick fake has done all six jobs is
    # stopped before its server starts, so under load fewer than four servers may have run.
    assert 1 <= len(servers) <= 4 and len(outputs) == len(servers)
    for argv in servers.values():  # comfy start's flags, on every worker's server
        assert "--disable-metadata" in argv and argv[argv.index("--preview-size") + 1] == "256"
        assert "--temp-directory" in argv and "--user-directory" in argv
    _assert_nothing_left(no_leftover_processes)

    again = _run(cli, *_args(ray_cluster, comfyui, out, "--prompt", "a red bicycle", "--count", "6", "--json"))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["data"]["totals"] == {**json.loads(again.stdout)["data"]["totals"],
                                                         "skipped": 6, "done": 0, "images": 0}
    assert len(_lines(out)) == 6 and len(list(out.glob("*.png"))) == 6

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a lighthouse", "seed": 7}\n{"prompt": "a storm", "steps": -3}\n'
                       '{"prompt": "a harbour", "seed": 9}\n')
    mixed = _run(cli, *_args(ray_cluster, comfyui, tmp_path / "mixed", "--prompts", str(prompts)))
    assert mixed.returncode == 1
    by_prompt = {line["prompt"]: line for line in _lines(tmp_path / "mixed")}
    assert {p: line["status"] for p, line in by_prompt.items()} == {
        "a lighthouse": "done", "a storm": "failed", "a harbour": "done"}
    assert "steps" in by_prompt["a storm"]["error"] and by_prompt["a storm"]["attempts"] == 0
    assert by_prompt["a lighthouse"]["seed"] == 7
    _assert_nothing_left(no_leftover_processes)


def test_a_comfyui_killed_mid_run_has_its_jobs_run_elsewhere(
        slow_cluster: Callable[..., RayCluster], cli: Callable[..., subprocess.CompletedProcess[str]],
        comfyui: Path, tmp_path: Path, no_leftover_processes: Path) -> None:
    # 1 s per image: the server killed after the first image still holds a job, however loaded the machine.
    rc = slow_cluster(seconds=1.0)
    out = tmp_path / "out"
    killed: list[dict[str, Any]] = []

    def kill_a_busy_server(_proc: subprocess.Popen[bytes]) -> None:
        killed.append(_server_of(_lines(out)[0], no_leftover_processes))  # busy: it holds the next job
        os.kill(killed[0]["pid"], signal.SIGKILL)

    proc = _fault_mid_run(rc, comfyui, out, tmp_path / "err.txt", 1, kill_a_busy_server, "--count", "8")
    victim = killed[0]
    assert proc.returncode == 0, (tmp_path / "err.txt").read_text()
    lines = _assert_each_done_once(out, 8)
    assert any(line["attempts"] == 2 for line in lines)  # the job on the dead server ran again elsewhere
    assert live_process(victim) is None
    assert "died" in (tmp_path / "err.txt").read_text()
    _assert_nothing_left(no_leftover_processes)


def test_max_retries_0_fails_the_jobs_of_a_dead_server_and_runs_the_rest(
        slow_cluster: Callable[..., RayCluster], comfyui: Path, tmp_path: Path,
        no_leftover_processes: Path) -> None:
    # 1 s per image: the server killed after the first image still holds a job, however loaded the machine.
    rc = slow_cluster(seconds=1.0)
    out = tmp_path / "out"
    proc = _fault_mid_run(rc, comfyui, out, tmp_path / "err.txt", 1,
                          lambda _p: os.kill(_server_of(_lines(out)[0], no_leftover_processes)["pid"], signal.SIGKILL),
                          "--count", "8", "--max-retries", "0")
    assert proc.returncode == 1, (tmp_path / "err.txt").read_text()
    lines = _lines(out)
    failed = [line for line in lines if line["status"] == "failed"]
    assert len(lines) == 8 and failed and all(line["attempts"] == 1 for line in failed)
    assert all("given up after 1 attempts" in line["error"] for line in failed)
    assert len(list(out.glob("*.png"))) == 8 - len(failed)
    _assert_nothing_left(no_leftover_processes)


def test_a_node_removed_mid_run_has_its_jobs_run_elsewhere(
        slow_cluster: Callable[..., RayCluster], comfyui: Path, tmp_path: Path,
        no_leftover_processes: Path) -> None:
    # 1 s per image: the removed node still holds jobs after the first two, however loaded the machine.
    rc = slow_cluster(seconds=1.0)
    out = tmp_path / "out"
    proc = _fault_mid_run(rc, comfyui, out, tmp_path / "err.txt", 2, lambda _p: rc.remove_node(rc.workers[0]),
                          "--count", "8")
    assert proc.returncode == 0, (tmp_path / "err.txt").read_text()
    lines = _assert_each_done_once(out, 8)
    assert any(line["attempts"] == 2 for line in lines)  # the jobs on the removed node ran again elsewhere
    assert "lost" in (tmp_path / "err.txt").read_text()
    _assert_nothing_left(no_leftover_processes)


def test_ctrl_c_stops_every_worker_and_exits_130(
        slow_cluster: Callable[..., RayCluster], comfyui: Path, tmp_path: Path,
        no_leftover_processes: Path) -> None:
    rc = slow_cluster(seconds=1.0)
    out = tmp_path / "out"
    proc = _fault_mid_run(rc, comfyui, out, tmp_path / "err.txt", 1, lambda p: p.send_signal(signal.SIGINT),
                          "--count", "20")
    assert proc.returncode == 130, (tmp_path / "err.txt").read_text()
    assert len(_lines(out)) < 20
    _assert_nothing_left(no_leftover_processes)


def test_without_ray_cluster_names_the_extra_and_help_does_not_import_ray(
        cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    blocker = tmp_path / "no-ray"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    result = cli("generate", "--cluster", "--prompt", "x",
                 env={"PYTHONPATH": f"{REPO}{os.pathsep}{blocker}"})
    assert result.returncode == 2
    assert 'pip install "fluxops[cluster]"' in result.stderr and "Traceback" not in result.stderr
    for argv in (["--help"], ["generate", "--help"]):
        code = (f"import sys, runpy\nsys.argv = ['fluxops', *{argv!r}]\n"
                "try:\n    runpy.run_module('fluxops', run_name='__main__')\nexcept SystemExit:\n    pass\n"
                "print('ray' in sys.modules, file=sys.stderr)\n")
        shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
        assert shown.stderr.strip().endswith("False"), argv


def test_workers_that_cannot_be_placed_end_the_run_instead_of_hanging(
        slow_cluster: Callable[..., RayCluster], cli: Callable[..., subprocess.CompletedProcess[str]],
        comfyui: Path, tmp_path: Path, no_leftover_processes: Path) -> None:
    import ray

    rc = slow_cluster((1,))
    ray.init(address=rc.address, log_to_driver=False)
    try:
        @ray.remote(num_gpus=1)
        class Holder:  # another Ray job's actor, holding the only GPU
            def ping(self) -> bool:
                return True

        holder = Holder.remote()  # type: ignore[attr-defined]
        assert ray.get(holder.ping.remote(), timeout=BOUND)
        proc = _run(cli, *_args(rc, comfyui, tmp_path / "out", "--count", "2", "--json", "--start-timeout", "3"))
    finally:
        ray.shutdown()
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["data"]["totals"]["failed"] == 2 and doc["data"]["totals"]["done"] == 0
    assert {w["state"] for w in doc["data"]["workers"]} == {"failed"}
    assert all("not started within 3 s" in line["error"] and "ray status" in line["error"]
               for line in doc["data"]["jobs"])
    _assert_nothing_left(no_leftover_processes)
