"""The fake ComfyUI behaves like the recorded ComfyUI v0.3.64 where fluxops depends on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests
import websocket

from tests.comfy.conftest import free_port
from tests.conftest import DATA


def test_serves_recorded_routes_under_both_prefixes(start_fake, comfyui_dir: Path) -> None:
    _proc, port = start_fake("--cpu")
    base = f"http://127.0.0.1:{port}"
    for prefix in ("", "/api"):
        stats = requests.get(base + prefix + "/system_stats", timeout=5).json()
        assert stats["system"]["comfyui_version"] == "0.3.64"
        assert stats["system"]["argv"][1:] == ["--listen", "127.0.0.1", "--port", str(port), "--cpu"]
        assert stats["devices"][0]["type"] == "cpu"
        assert requests.get(base + prefix + "/queue", timeout=5).json() == {
            "queue_running": [],
            "queue_pending": [],
        }
        assert requests.get(base + prefix + "/prompt", timeout=5).json() == {
            "exec_info": {"queue_remaining": 0}
        }
    assert requests.get(base + "/models/unet", timeout=5).status_code == 404
    assert requests.get(base + "/models/clip", timeout=5).status_code == 404
    assert requests.get(base + "/models/text_encoders", timeout=5).json() == [
        "clip_l.safetensors",
        "t5xxl_fp16.safetensors",
    ]
    assert "diffusion_models" in requests.get(base + "/models", timeout=5).json()
    assert requests.get(base + "/object_info/NoSuchNode", timeout=5).json() == {}
    assert requests.get(base + "/features", timeout=5).json() == {
        "supports_preview_metadata": True,
        "max_upload_size": 104857600,
    }
    logs = requests.get(base + "/internal/logs/raw", timeout=5).json()
    assert any(entry["m"].startswith("ComfyUI version: 0.3.64") for entry in logs["entries"])
    assert requests.get(base + "/api/internal/logs/raw", timeout=5).status_code == 404
    # The origin check of a loopback server without --enable-cors-header.
    assert (
        requests.get(base + "/queue", headers={"Origin": "http://evil.example:8188"}, timeout=5).status_code
        == 403
    )


def test_model_combos_follow_the_files_present(start_fake, comfyui_dir: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra-models"
    (extra / "unet-a").mkdir(parents=True)
    (extra / "unet-a" / "other-unet.safetensors").write_bytes(b"x")
    (extra / "loras-d").mkdir()
    (extra / "loras-d" / "l2.pt").write_bytes(b"x")
    (extra / "loras-d" / "notes.txt").write_text("not a model")
    yaml_file = extra / "extra.yaml"
    yaml_file.write_text(
        f"fluxops:\n    base_path: {extra}\n    unet: unet-a\n    loras: |\n        loras-d\n"
    )
    proc, port = start_fake("--extra-model-paths-config", str(yaml_file))
    base = f"http://127.0.0.1:{port}"
    (comfyui_dir / "models" / "unet" / "sub").mkdir()
    (comfyui_dir / "models" / "unet" / "sub" / "late.sft").write_bytes(b"x")  # added while running
    info = requests.get(base + "/object_info/UNETLoader", timeout=5).json()
    assert info["UNETLoader"]["input"]["required"]["unet_name"][0] == [
        "flux1-krea-dev_fp8_scaled.safetensors",
        "other-unet.safetensors",
        "sub/late.sft",
    ]
    vae = requests.get(base + "/object_info", timeout=5).json()["VAELoader"]["input"]["required"]["vae_name"]
    assert vae[0] == ["ae.safetensors", "pixel_space"]
    assert requests.get(base + "/models/loras", timeout=5).json() == [
        "FLUX.1-Turbo-Alpha.safetensors",
        "l2.pt",
    ]
    proc.terminate()
    output, _ = proc.communicate(timeout=10)
    assert f"Adding extra search path unet {extra / 'unet-a'}" in output


def _recorded(case: str) -> tuple[str, list[dict], dict | None]:
    recording = json.loads((DATA / "comfyui" / "ws_connect.json").read_text(encoding="utf-8"))[case]
    frames = [{k: v for k, v in m.items() if k != "_t_ms"} for m in recording["messages"]]
    return recording["client_id"], frames, recording.get("sent")


def test_websocket_first_frames_match_the_recording(start_fake) -> None:
    _proc, port = start_fake()
    for case in ("plain_client", "client_sending_feature_flags"):
        client_id, frames, sent = _recorded(case)
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws?clientId={client_id}", timeout=5)
        try:
            if sent is not None:
                ws.send(json.dumps(sent))
            assert [json.loads(ws.recv()) for _ in frames] == frames
        finally:
            ws.close()
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/api/ws", timeout=5)  # no id: the server makes one
    try:
        first = json.loads(ws.recv())
        assert first["type"] == "status" and len(first["data"]["sid"]) == 32
    finally:
        ws.close()


def _run_main(
    comfyui_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, str(comfyui_dir / "main.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=comfyui_dir,
    )


def test_startup_failures_like_the_real_one(comfyui_dir: Path, tmp_path: Path) -> None:
    port = str(free_port())
    bad_flag = _run_main(comfyui_dir, "--port", port, "--no-such-flag")
    assert bad_flag.returncode == 2 and "unrecognized arguments: --no-such-flag" in bad_flag.stderr
    base = tmp_path / "base-without-custom-nodes"
    base.mkdir()
    no_nodes = _run_main(comfyui_dir, "--port", port, "--base-directory", str(base))
    assert (
        no_nodes.returncode == 1
        and "FileNotFoundError" in no_nodes.stderr
        and "custom_nodes" in no_nodes.stderr
    )
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("x:\n  loras:\n    - a\n    - b\n")
    listed = _run_main(comfyui_dir, "--port", port, "--extra-model-paths-config", str(bad_yaml))
    assert (
        listed.returncode == 1 and "AttributeError: 'list' object has no attribute 'split'" in listed.stderr
    )
    crash = _run_main(
        comfyui_dir,
        "--port",
        port,
        env={"FAKE_COMFYUI_CRASH": "ModuleNotFoundError: No module named 'torch'"},
    )
    assert crash.returncode == 1 and crash.stderr.rstrip().endswith("No module named 'torch'")
    assert "ComfyUI version: 0.3.64" in crash.stderr


def test_second_server_on_a_taken_port_dies_at_bind(start_fake) -> None:
    _first, port = start_fake()
    second, _ = start_fake(port=port, wait=False)
    output, _ = second.communicate(timeout=30)
    assert second.returncode == 1
    assert (
        f"error while attempting to bind on address ('127.0.0.1', {port}): address already in use" in output
    )


def test_the_leftover_check_finds_and_kills_a_running_fake(comfyui_dir: Path, tmp_path: Path) -> None:
    """The autouse fixture's check, on a fake deliberately left running (in its own pid folder)."""
    import os

    from tests.helpers import kill_leftovers, stopping, wait_for_port
    from tests.helpers import live_process as _alive

    pid_dir = tmp_path / "own-pids"
    port = free_port()
    env = {**os.environ, "FAKE_COMFYUI_PID_DIR": str(pid_dir)}
    with stopping(subprocess.Popen([sys.executable, str(comfyui_dir / "main.py"), "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)) as proc:
        wait_for_port(port, proc)
        record = json.loads(next(pid_dir.glob("*.json")).read_text())
        assert record["pid"] == proc.pid and _alive(record) is not None
        found = kill_leftovers(pid_dir)
        assert len(found) == 1 and found[0].startswith(f"pid {proc.pid}: ")
        assert proc.wait(10) is not None
        assert kill_leftovers(pid_dir) == []
