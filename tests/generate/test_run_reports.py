"""What a run reports about itself: the images saved before a failure (item 11), prompts ComfyUI answered from
its cache (item 12), the model hashes the sidecar may claim (item 13), the out-of-memory hint (item 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.comfy.conftest import RELEASES
from tests.generate.conftest import Fake

pytestmark = pytest.mark.network


@pytest.mark.parametrize("release", RELEASES, indirect=True)
def test_a_run_failing_part_way_still_reports_the_images_it_saved(generate: Any, fake: Fake, release: str) -> None:
    fake.faults(oom_from_prompt=2)
    result = generate("--count", "3", "--seed", "10", "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "generate.out_of_memory"
    [image] = doc["data"]["images"]
    assert Path(image["path"]).name == "production_photo_10.png" and Path(image["path"]).is_file()
    assert Path(image["sidecar"]).is_file() and doc["data"]["seeds"] == [10, 11, 12]
    assert fake.get("/queue")["queue_pending"] == []  # the rest was withdrawn
    if release == "0.38":  # through the jobs API: the failed prompt is finished, the third was still pending
        assert fake.received()["cancel_requests"] == [fake.received()["prompts"][2]["prompt_id"]]


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


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_prompt_answered_from_the_cache_is_said_to_be_and_left_out_of_the_figures(
        generate: Any, fake: Fake, transport: str) -> None:
    if transport == "polling":
        fake.faults(no_ws=True)
    assert generate("--seed", "5").returncode == 0
    again = generate("--count", "2", "--seed", "5", "--json")  # seed 5 again (identical graph), and seed 6
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)["data"]
    assert data["transport"] == transport
    cached, fresh = data["images"]
    assert cached["cached"] is True and fresh["cached"] is False and data["cached_images"] == 1
    assert data["seconds_per_image"] == round(data["seconds"], 3)  # one generated image, not two
    assert json.loads(Path(cached["sidecar"]).read_text())["cached"] is True
    assert "image 1/2: ComfyUI answered from its cache" in again.stderr

    human = generate("--seed", "5")
    assert "[from ComfyUI's cache]" in human.stdout
    assert "1 image in" in human.stdout and "no image was generated (1 from ComfyUI's cache" in human.stdout


def test_a_remote_server_s_model_hashes_are_not_claimed(cli: Any, fake: Fake, tmp_path: Path) -> None:
    result = cli("generate", "--url", fake.url, "--seed", "3", "--output", str(tmp_path / "o"), "--json")
    assert result.returncode == 0, result.stderr
    sidecar = json.loads(Path(json.loads(result.stdout)["data"]["images"][0]["sidecar"]).read_text())
    assert set(sidecar["models"]) == {"diffusion_model", "clip_l", "t5xxl", "vae", "lora"}
    for record in sidecar["models"].values():
        assert record["sha256"] is None and "not started by fluxops" in record["not_checked"]


def test_a_server_fluxops_started_records_the_verified_hashes(comfy: Any, cli: Any, comfyui_dir: Path,
                                                               tmp_path: Path) -> None:
    from tests.fakes.models import place, small_models, write_manifest

    models = small_models(64)
    place(comfyui_dir / "models", models)
    manifest = write_manifest(tmp_path / "manifest.toml", models)
    verified = cli("verify", "--manifest", str(manifest))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    lora = comfyui_dir / "models" / "loras" / "FLUX.1-Turbo-Alpha.safetensors"

    def sidecar_models(seed: str) -> dict[str, Any]:
        result = cli("generate", "--manifest", str(manifest), "--seed", seed, "--output", str(tmp_path / "o"),
                     "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(Path(json.loads(result.stdout)["data"]["images"][0]["sidecar"]).read_text())["models"]

    records = sidecar_models("1")  # generate starts the server itself
    for m in models:
        assert records[m.id]["sha256"] == m.sha256 and records[m.id]["verified_at"], m.id
    lora.write_bytes(lora.read_bytes() + b"changed after verify")
    records = sidecar_models("2")  # the server `comfy`/generate started before, reused: still ours
    assert records["lora"]["sha256"] is None and "fluxops verify" in records["lora"]["not_checked"]
    assert records["vae"]["sha256"] == next(m.sha256 for m in models if m.id == "vae")


def _oom_hint(cli: Any, port: int, tmp_path: Path, *args: str) -> str:
    result = cli("generate", "--port", str(port), "--output", str(tmp_path / "o"), "--json", *args)
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "generate.out_of_memory"
    return str(error["hint"])


def test_the_oom_hint_suggests_only_what_would_change_something(cli: Any, start_fake: Any,
                                                                 tmp_path: Path) -> None:
    _proc, port = start_fake(env={"FAKE_COMFYUI_OOM": "1"})
    hint = _oom_hint(cli, port, tmp_path, "--batch", "2")
    assert "--batch 1" in hint and "--width/--height" in hint and "--lowvram" in hint
    hint = _oom_hint(cli, port, tmp_path, "--batch", "1", "--width", "512", "--height", "512")
    assert "--batch" not in hint and "--width" not in hint and "--lowvram" in hint

    _proc, low = start_fake("--lowvram", env={"FAKE_COMFYUI_OOM": "1"})
    hint = _oom_hint(cli, low, tmp_path, "--batch", "1")
    assert "--lowvram" not in hint and "--batch" not in hint and "--width/--height" in hint
    hint = _oom_hint(cli, low, tmp_path, "--width", "512", "--height", "512")
    assert "--lowvram" not in hint and "--batch" not in hint and "--width" not in hint
    assert "needs a GPU with more memory" in hint or "stop other processes on the GPU" in hint
