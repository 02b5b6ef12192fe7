"""`fluxops comfy start|stop|status|logs` through the real CLI, against the fake ComfyUI as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from tests.comfy.conftest import RELEASES
from tests.fakes.http_stub import StubServer
from tests.helpers import REPO, spawn_fluxops, wait_until


def _doc(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout)


def _state(comfy) -> dict:
    return json.loads(comfy.state_file.read_text())


@pytest.mark.parametrize("release", RELEASES, indirect=True)
def test_start_reuse_status_logs_stop(comfy, release: str) -> None:
    started = comfy("start", "--json")
    assert started.returncode == 0, started.stderr
    doc = _doc(started)
    assert doc["ok"] and doc["data"]["reused"] is False
    server = doc["data"]["server"]
    assert server["command"][2:] == [
        "--listen",
        "127.0.0.1",
        "--port",
        str(comfy.port),
        "--disable-auto-launch",
    ]
    assert _state(comfy) == server
    # the recorded process really is the server answering on the port
    stats = requests.get(f"http://127.0.0.1:{comfy.port}/system_stats", timeout=5).json()
    assert stats["system"]["argv"] == server["command"][1:]

    again = comfy("start")
    assert (
        again.returncode == 0 and "already running" in again.stdout and f"pid {server['pid']}" in again.stdout
    )

    status = comfy("status", "--json")
    assert status.returncode == 0
    data = _doc(status)["data"]
    assert data["running"] and data["answering"] and data["pid"] == server["pid"]
    assert data["comfyui_version"] == "0.3.64" and data["queue"] == {"running": 0, "pending": 0}
    assert data["devices"][0]["vram_total"] == 85_031_714_816 and data["uptime_s"] >= 0
    human = comfy("status")
    assert "ComfyUI 0.3.64 running at" in human.stdout and "79.2 GiB" in human.stdout
    devices = 2 if release == "0.38" else 1  # a current release lists every device
    assert len(data["devices"]) == devices and human.stdout.count("device: cuda:") == devices

    logs = comfy("logs", "-n", "3")
    assert logs.returncode == 0
    assert logs.stdout.splitlines()[-1] == f"To see the GUI go to: http://127.0.0.1:{comfy.port}"
    assert len(logs.stdout.splitlines()) == 3

    stopped = comfy("stop", "--json")
    assert stopped.returncode == 0 and _doc(stopped)["data"]["outcome"] == "terminated"
    assert (
        not psutil.pid_exists(server["pid"]) or psutil.Process(server["pid"]).status() == psutil.STATUS_ZOMBIE
    )
    assert not comfy.state_file.exists()
    after = comfy("status")
    assert after.returncode == 1 and "not running" in after.stdout


@pytest.mark.parametrize(
    ("fault", "code", "shown"),
    [
        (
            {"FAKE_COMFYUI_CRASH": "ModuleNotFoundError: No module named 'torch'"},
            "comfy.missing_module",
            "lacks a module: torch",
        ),
        (
            {"FAKE_COMFYUI_CRASH": "RuntimeError: CUDA error: no kernel image is available for execution"},
            "comfy.cuda_error",
            "failed to start on the GPU",
        ),
        (
            {"args": "--comfy-arg=--no-such-flag"},
            "comfy.bad_argument",
            "unrecognized arguments: --no-such-flag",
        ),
        ({"no_custom_nodes": "1"}, "comfy.custom_nodes_missing", "needs a custom_nodes folder"),
        ({"bad_yaml": "1"}, "comfyui.extra_paths_invalid", "'list' object has no attribute 'split'"),
    ],
)
def test_crash_at_start_shows_the_cause_and_the_log(
    comfy, comfyui_dir: Path, fault: dict, code: str, shown: str
) -> None:
    if fault.pop("no_custom_nodes", None):
        (comfyui_dir / "custom_nodes").rmdir()
    if fault.pop("bad_yaml", None):
        (comfyui_dir / "extra_model_paths.yaml").write_text("mine:\n  loras:\n    - a\n    - b\n")
    args = [fault.pop("args")] if "args" in fault else []
    result = comfy("start", *args, env=fault)
    assert result.returncode != 0
    assert shown in result.stderr
    assert "last lines of" in result.stderr  # the end of ComfyUI's log, where its own error is
    assert "fix:" in result.stderr
    assert not comfy.state_file.exists()
    as_json = comfy("start", "--json", *args, env=fault)
    error = _doc(as_json)["error"]
    assert error["code"] == code and error["log_tail"] and error["log_path"]


def _other_comfyui(_path: str, _headers: object) -> tuple[int, dict[str, str], dict]:
    """Another program's server on the port: answers /system_stats like a ComfyUI started by someone else."""
    return 200, {}, {"system": {"comfyui_version": "0.3.60", "argv": ["main.py", "--port", "x"]}, "devices": []}


def test_port_held_by_another_comfyui_is_left_alone(comfy, start_fake) -> None:
    other, port = start_fake(port=comfy.port)
    result = comfy("start")
    assert result.returncode == 1
    assert f"port {port} is already in use by a ComfyUI 0.3.64 that fluxops did not start" in result.stderr
    if sys.platform.startswith("linux"):  # psutil sees our own user's listening sockets there
        assert f"pid {other.pid})" in result.stderr
    assert not comfy.state_file.exists()
    refused = comfy("stop")
    assert refused.returncode == 1 and "fluxops did not start it; it was left running" in refused.stderr
    status = comfy("status")
    assert status.returncode == 1 and "that fluxops did not start answers on that port" in status.stdout
    assert other.poll() is None
    assert requests.get(f"http://127.0.0.1:{port}/queue", timeout=5).status_code == 200


def _start_in_background(tmp_path: Path, pid_dir: Path, *args: str, **fake_env: str) -> subprocess.Popen:
    """`fluxops comfy start ARGS` as a background process, returned once the fake ComfyUI it spawns runs."""
    launcher = spawn_fluxops("comfy", "start", *args, env=fake_env, cwd=tmp_path / "work")
    wait_until(lambda: list(pid_dir.glob("*.json")), what="the fake ComfyUI's pid record")
    return launcher


def test_a_server_taking_the_port_during_start_is_not_mistaken_for_ours(
    comfy, tmp_path: Path, no_leftover_processes: Path
) -> None:
    """The race protocol.md 1.2 describes: another server answers while ours dies at bind."""
    # our fake ComfyUI has been spawned once this returns (the launcher's port check is behind it)
    launcher = _start_in_background(tmp_path, no_leftover_processes, "--timeout", "60",
                                    FAKE_COMFYUI_START_DELAY="3")
    with StubServer(_other_comfyui, port=comfy.port):
        _out, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 1, err
    assert "another server answers on port" in err
    assert "address already in use" in err and "already in use" in err
    assert not comfy.state_file.exists()


def test_never_ready_times_out_and_cleans_up(comfy, no_leftover_processes: Path) -> None:
    result = comfy("start", "--timeout", "2", env={"FAKE_COMFYUI_NEVER_READY": "1"})
    assert result.returncode == 1
    assert "did not become ready within 2 s; it was stopped" in result.stderr
    assert "No target revision found." in result.stderr  # the log's last lines are shown
    assert not comfy.state_file.exists()
    record = json.loads(next(no_leftover_processes.glob("*.json")).read_text())
    proc = psutil.Process(record["pid"]) if psutil.pid_exists(record["pid"]) else None
    assert proc is None or proc.status() == psutil.STATUS_ZOMBIE


def test_stop_after_the_server_died_clears_stale_state(comfy) -> None:
    assert comfy("start").returncode == 0
    pid = _state(comfy)["pid"]
    os.killpg(pid, signal.SIGKILL)
    status = comfy("status", "--json")
    assert status.returncode == 1 and _doc(status)["data"]["stale"] is True
    stopped = comfy("stop")
    assert stopped.returncode == 0 and "had already exited" in stopped.stdout
    assert not comfy.state_file.exists()
    assert comfy("start").returncode == 0  # a fresh start works after that


def test_a_reused_pid_is_never_killed(comfy, start_fake) -> None:
    """A state file whose pid now belongs to another process (other start time) is stale, not a target."""
    other, _port = start_fake()
    comfy.state_file.parent.mkdir(parents=True, exist_ok=True)
    comfy.state_file.write_text(
        json.dumps(
            {
                "pid": other.pid,
                "create_time": psutil.Process(other.pid).create_time() - 100,
                "host": "127.0.0.1",
                "port": comfy.port,
                "command": ["python", "main.py"],
                "comfyui_dir": "/x",
                "log_path": "/x/log",
                "started_at": "2026-01-01T00:00:00+00:00",
            }
        )
    )
    stopped = comfy("stop")
    assert stopped.returncode == 0 and "had already exited" in stopped.stdout
    assert other.poll() is None


def test_stop_kills_a_server_that_ignores_sigterm(comfy) -> None:
    assert comfy("start", env={"FAKE_COMFYUI_IGNORE_SIGTERM": "1"}).returncode == 0
    stopped = comfy("stop", "--grace", "0.5", "--json")
    assert stopped.returncode == 0 and _doc(stopped)["data"]["outcome"] == "killed"
    assert not comfy.state_file.exists()


def test_listen_on_all_interfaces_warns(comfy) -> None:
    result = comfy("start", "--listen", "0.0.0.0")
    assert result.returncode == 0, result.stderr
    assert "ComfyUI has no authentication" in result.stderr and "0.0.0.0" in result.stderr
    assert f"http://127.0.0.1:{comfy.port}" in result.stdout  # fluxops itself talks to it over loopback
    assert _state(comfy)["host"] == "0.0.0.0"
    quiet = comfy("stop")
    assert quiet.returncode == 0
    local = comfy("start")
    assert local.returncode == 0 and "no authentication" not in local.stderr


def test_models_outside_comfyui_are_wired_in_through_extra_model_paths(comfy, tmp_path: Path) -> None:
    models = tmp_path / "srv-models"
    (models / "diffusion_models").mkdir(parents=True)
    (models / "diffusion_models" / "elsewhere.safetensors").write_bytes(b"x")
    (models / "clip").mkdir()
    (models / "clip" / "legacy-te.sft").write_bytes(b"x")
    result = comfy("start", "--models-dir", str(models), "--comfy-arg=--cpu", "--json")
    assert result.returncode == 0, result.stderr
    command = _doc(result)["data"]["server"]["command"]
    yaml_path = command[command.index("--extra-model-paths-config") + 1]
    assert command[-1] == "--cpu" and Path(yaml_path).parent.name == "comfy"
    base = f"http://127.0.0.1:{comfy.port}"
    assert "elsewhere.safetensors" in requests.get(base + "/models/diffusion_models", timeout=5).json()
    assert "legacy-te.sft" in requests.get(base + "/models/text_encoders", timeout=5).json()


def test_logs_follow_ends_when_the_server_exits(comfy) -> None:
    assert comfy("start", env={"FAKE_COMFYUI_EXIT_AFTER": "3"}).returncode == 0
    followed = comfy("logs", "-f", "-n", "1", timeout=60)
    assert followed.returncode == 0
    assert "exiting after 3.0 s" in followed.stdout


def test_logs_without_a_log_and_follow_with_json(comfy) -> None:
    missing = comfy("logs")
    assert missing.returncode == 1 and "no ComfyUI log" in missing.stderr
    bad = comfy("logs", "-f", "--json")
    assert bad.returncode == 2


def test_comfyui_python_is_found_or_asked_for(comfy, comfyui_dir: Path, tmp_path: Path) -> None:
    (comfyui_dir / "venv" / "bin" / "python").unlink()
    missing = comfy("start")
    assert missing.returncode == 2
    assert "Python interpreter was not found" in missing.stderr and "--comfyui-python" in missing.stderr
    not_comfy = comfy("start", "--comfyui-dir", str(tmp_path / "work"))
    assert not_comfy.returncode == 2 and "is not a ComfyUI folder" in not_comfy.stderr
    explicit = comfy("start", "--comfyui-python", sys.executable, "--json")
    assert explicit.returncode == 0, explicit.stderr
    assert _doc(explicit)["data"]["server"]["command"][0] == sys.executable


def test_an_older_comfyui_without_argv_is_recognised_by_its_listening_pid(comfy) -> None:
    started = comfy("start", "--json", env={"FAKE_COMFYUI_NO_ARGV": "1"})
    assert started.returncode == 0, started.stderr
    assert comfy("status").returncode == 0


def test_ctrl_c_during_start_leaves_nothing_behind(comfy, tmp_path: Path, no_leftover_processes: Path) -> None:
    # the fake ComfyUI runs (and will never be ready) once this returns
    launcher = _start_in_background(tmp_path, no_leftover_processes, FAKE_COMFYUI_NEVER_READY="1")
    launcher.send_signal(signal.SIGINT)
    _out, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 130, err
    assert "interrupted" in err
    assert not comfy.state_file.exists()
    record = json.loads(next(no_leftover_processes.glob("*.json")).read_text())
    proc = psutil.Process(record["pid"]) if psutil.pid_exists(record["pid"]) else None
    assert proc is None or proc.status() == psutil.STATUS_ZOMBIE


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_status_writes_nothing_not_even_a_log_rotation(comfy) -> None:
    started = comfy("start", "--json")
    assert started.returncode == 0, started.stderr
    log = Path(_doc(started)["data"]["server"]["log_path"])
    with log.open("ab") as fh:  # past the size at which a log is rotated while ComfyUI runs
        fh.write(b"filler line\n" * (11 * 1024 * 1024 // 12))
    before = _snapshot(comfy.state_file.parent)
    status = comfy("status")
    assert status.returncode == 0, status.stderr
    assert _snapshot(comfy.state_file.parent) == before
    assert not log.with_name(log.name + ".1").exists()


def test_every_subcommand_takes_the_options_of_start(comfy, comfyui_dir: Path, tmp_path: Path) -> None:
    """A command line is turned into another by editing one word: start, status, logs and stop all take
    start's options (those that do not apply are ignored)."""
    models = comfyui_dir / "models"
    line = [
        "--comfyui-dir", str(comfyui_dir), "--comfyui-python", str(comfyui_dir / "venv" / "bin" / "python"),
        "--models-dir", str(models), "--manifest", str(REPO / "manifests" / "flux-krea-turbo.toml"),
        "--listen", "127.0.0.1", "--port", str(comfy.port), "--comfy-arg=--cpu", "--timeout", "60",
    ]
    started = comfy("start", *line, "--json")
    assert started.returncode == 0, started.stderr
    pid = _doc(started)["data"]["server"]["pid"]
    status = comfy("status", *line, "--json")
    assert status.returncode == 0, status.stderr
    assert _doc(status)["data"]["pid"] == pid and _doc(status)["data"]["answering"]
    logs = comfy("logs", *line, "-n", "1")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == f"To see the GUI go to: http://127.0.0.1:{comfy.port}"
    stopped = comfy("stop", *line, "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert _doc(stopped)["data"]["outcome"] == "terminated" and _doc(stopped)["data"]["server"]["pid"] == pid
    again = comfy("stop", *line)
    assert again.returncode == 0 and "not running" in again.stdout
