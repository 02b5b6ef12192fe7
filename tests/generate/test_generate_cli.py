"""`fluxops generate` through the CLI against the fake ComfyUI running as a real process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fluxops.generate.workflow import PRESETS, load_workflow
from tests.comfy.conftest import RELEASES
from tests.generate.conftest import Fake

pytestmark = pytest.mark.network


def document(result: Any) -> dict[str, Any]:
    assert result.stdout.count('"schema"') == 1, result.stdout
    return json.loads(result.stdout)


# (steps, cfg, LoRA strength) per preset, from the issue; written out here, not taken from the code under test
PRESET_TABLE = {"fast": (8, 1.5, 0.8), "production": (10, 2.0, 0.75), "quality": (12, 2.5, 0.7),
                "premium": (15, 3.0, 0.6)}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_submits_exactly_the_expected_graph(generate: Any, fake: Fake, preset: str) -> None:
    result = generate("--preset", preset, "--seed", "11", "--json")
    assert result.returncode == 0, result.stderr
    [body] = fake.received()["prompts"]
    expected = json.loads(load_workflow().path.read_text())  # the packaged file, values set by hand
    steps, cfg, strength = PRESET_TABLE[preset]
    expected["7"]["inputs"].update(seed=11, steps=steps, cfg=cfg)
    expected["3"]["inputs"].update(strength_model=strength, strength_clip=strength)
    assert body["prompt"] == expected
    assert body["client_id"] and body["prompt_id"]
    data = document(result)["data"]
    assert data["params"]["steps"] == PRESETS[preset].steps and data["seeds"] == [11]


def test_every_override_reaches_the_graph(generate: Any, fake: Fake) -> None:
    args = ["--prompt", "a red bicycle", "--negative", "rust", "--seed", "99", "--steps", "14", "--cfg", "3.5",
            "--sampler", "dpmpp_2m", "--scheduler", "karras", "--lora-strength", "0.5", "--width", "768",
            "--height", "512", "--batch", "2", "--preset", "fast"]
    result = generate(*args)
    assert result.returncode == 0, result.stderr
    [body] = fake.received()["prompts"]
    expected = json.loads(load_workflow().path.read_text())
    expected["4"]["inputs"]["text"] = "a red bicycle"
    expected["5"]["inputs"]["text"] = "rust"
    expected["7"]["inputs"].update(seed=99, steps=14, cfg=3.5, sampler_name="dpmpp_2m", scheduler="karras")
    expected["3"]["inputs"].update(strength_model=0.5, strength_clip=0.5)
    expected["6"]["inputs"].update(width=768, height=512, batch_size=2)
    assert body["prompt"] == expected
    out = Path(result.stdout.split()[0]).parent
    assert sorted(p.name for p in out.iterdir()) == [
        "production_photo_99_1.json", "production_photo_99_1.png", "production_photo_99_2.json",
        "production_photo_99_2.png"]
    with Image.open(out / "production_photo_99_2.png") as image:
        assert image.size == (768, 512)


@pytest.mark.parametrize("release", RELEASES, indirect=True)
def test_image_and_sidecar(generate: Any, tmp_path: Path) -> None:
    result = generate("--seed", "5", "--json")
    assert result.returncode == 0, result.stderr
    data = document(result)["data"]
    [image] = data["images"]
    path = Path(image["path"])
    assert path == tmp_path / "out" / "production_photo_5.png" and path.is_file()
    assert "seed 5 (reproduce with --seed 5)" in result.stderr
    sidecar = json.loads(Path(image["sidecar"]).read_text())
    assert sidecar["seed"] == 5 and sidecar["prompt"].startswith("professional photography")
    assert sidecar["parameters"]["steps"] == 10 and sidecar["parameters"]["cfg"] == 2.0
    # a server fluxops did not start: the manifest's hash is not claimed (tests/generate/test_run_reports.py)
    assert sidecar["models"]["vae"]["filename"] == "ae.safetensors" and sidecar["models"]["vae"]["sha256"] is None
    assert sidecar["server"]["comfyui_version"] == "0.3.64"
    timings = sidecar["timings"]
    assert timings["queued"] and timings["started"] and timings["finished"]
    assert timings["seconds_per_step"] is not None and timings["seconds_per_step"] > 0
    assert sidecar["comfyui_file"] == {"filename": "production_photo__00001_.png", "subfolder": "",
                                       "type": "output"}
    assert data["transport"] == "websocket"


def test_url_names_the_server(cli: Any, fake: Fake, tmp_path: Path) -> None:
    result = cli("generate", "--url", fake.url + "/", "--seed", "8", "--output", str(tmp_path / "o"), "--json")
    assert result.returncode == 0, result.stderr
    assert document(result)["data"]["server"]["url"] == fake.url and fake.received()["count"] == 1


def test_random_seed_is_printed_and_reproducible(generate: Any, fake: Fake) -> None:
    first = generate("--json")
    seed = document(first)["data"]["seeds"][0]
    assert f"reproduce with --seed {seed}" in first.stderr
    assert fake.received()["prompts"][0]["prompt"]["7"]["inputs"]["seed"] == seed


@pytest.mark.parametrize("release", RELEASES, indirect=True)
def test_count_queues_everything_at_once_with_distinct_seeds(generate: Any, fake: Fake) -> None:
    fake.faults(step_seconds=0.02)
    result = generate("--count", "4", "--seed", "40", "--json")
    assert result.returncode == 0, result.stderr
    received = fake.received()
    assert [p["prompt"]["7"]["inputs"]["seed"] for p in received["prompts"]] == [40, 41, 42, 43]
    assert [entry["finished_before"] for entry in received["post_log"]] == [0, 0, 0, 0]  # all queued up front
    data = document(result)["data"]
    assert len(data["images"]) == 4 and data["images_per_minute"] > 0 and data["seconds_per_image"] > 0
    assert {Path(i["path"]).name for i in data["images"]} == {f"production_photo_{s}.png" for s in range(40, 44)}


@pytest.mark.parametrize(("args", "code", "text"), [
    (["--steps", "0"], 2, "--steps 0 is below the minimum of 1"),
    (["--sampler", "euler_a"], 2, "unknown sampler 'euler_a'"),
    (["--cfg", "150"], 2, "--cfg 150.0 is above the maximum of 100.0"),
    (["--preset", "turbo"], 2, "unknown preset 'turbo'"),
])
def test_bad_values_never_reach_the_server(generate: Any, fake: Fake, args: list[str], code: int,
                                           text: str) -> None:
    result = generate(*args)
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    assert fake.received()["count"] == 0


def test_ui_format_workflow_never_reaches_the_server(generate: Any, fake: Fake, tmp_path: Path) -> None:
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [{"id": 1}], "links": [], "version": 0.4}))
    result = generate("--workflow", str(ui))
    assert result.returncode == 2
    assert "UI workflow" in result.stderr and "Workflow > Export (API)" in result.stderr
    assert fake.received()["count"] == 0


def test_model_missing_on_the_server(generate: Any, fake: Fake, comfyui_dir: Path) -> None:
    (comfyui_dir / "models" / "loras" / "FLUX.1-Turbo-Alpha.safetensors").unlink()
    result = generate("--json")
    assert result.returncode == 1
    error = document(result)["error"]
    assert error["code"] == "workflow.model_missing" and "fluxops setup" in error["hint"]
    assert "'FLUX.1-Turbo-Alpha.safetensors' is not in this ComfyUI's loras list" in error["message"]
    assert fake.received()["count"] == 0


def test_node_class_missing_on_the_server(generate: Any, fake: Fake, tmp_path: Path) -> None:
    graph = json.loads(load_workflow().path.read_text())
    graph["11"] = {"class_type": "UltimateSDUpscale", "inputs": {}, "_meta": {"title": "Upscale"}}
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(graph))
    result = generate("--workflow", str(path))
    assert result.returncode == 1
    assert "this ComfyUI has no UltimateSDUpscale node: update ComfyUI" in result.stderr
    assert fake.received()["count"] == 0


def test_out_of_memory(generate: Any, fake: Fake, tmp_path: Path) -> None:
    fake.faults(oom=True)
    result = generate("--json")
    assert result.returncode == 1
    error = document(result)["error"]
    assert error["code"] == "generate.out_of_memory"
    assert "Sampler (KSampler #7): the GPU ran out of memory: CUDA out of memory" in error["message"]
    for remedy in ("--width/--height", "--lowvram", "/free"):
        assert remedy in error["hint"]
    assert "--batch 1" not in error["hint"]  # the batch is already 1 (tests/generate/test_run_reports.py)
    assert fake.received()["free_requests"] == [{"unload_models": True, "free_memory": True}]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_model_file_comfyui_cannot_load(generate: Any, fake: Fake) -> None:
    fake.faults(load_error=True)
    result = generate("--json")
    assert result.returncode == 1
    error = document(result)["error"]
    assert error["code"] == "generate.model_load_failed" and "fluxops verify" in error["hint"]
    assert "VAE (VAELoader #8) could not load ae.safetensors: ERROR: VAE is invalid" in error["message"]


def test_server_dies_mid_run(generate: Any, fake: Fake) -> None:
    fake.faults(die_at_step=3)
    result = generate("--count", "2", "--json")
    assert result.returncode == 1
    error = document(result)["error"]
    assert error["code"] == "generate.server_gone" and "stopped answering" in error["message"]
    assert "fluxops comfy logs" in error["hint"]
    fake.proc.wait(timeout=10)


def test_an_answer_that_is_not_json_is_an_error(generate: Any, fake: Fake, tmp_path: Path) -> None:
    fake.faults(bad_json=True)
    result = generate("--count", "2", "--json")
    assert result.returncode == 1
    error = document(result)["error"]
    assert error["code"] == "comfy.bad_response"
    assert error["message"] == f"POST /prompt at {fake.url}/prompt did not return JSON: is this a ComfyUI server?"
    assert fake.received()["count"] == 1  # nothing more was sent after the garbage answer
    assert list((tmp_path / "out").iterdir()) == []  # the folder was made (and tested) before: no image in it


@pytest.mark.parametrize(("fault", "release"), [("drop_ws", "0.3.64"), ("no_ws", "0.3.64"), ("drop_ws", "0.38")],
                         indirect=["release"])
def test_without_websocket_it_polls_history(generate: Any, fake: Fake, fault: str, release: str) -> None:
    fake.faults(**{fault: True})
    result = generate("--count", "2", "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    data = document(result)["data"]
    assert data["transport"] == "polling" and len(data["images"]) == 2
    assert "following the run by polling /history" in result.stderr
    sidecar = json.loads(Path(data["images"][0]["sidecar"]).read_text())
    assert sidecar["timings"]["started"] and sidecar["timings"]["finished"]


def test_check_passes(generate: Any, fake: Fake) -> None:
    result = generate("--check", "--json")
    assert result.returncode == 0, result.stderr
    check = document(result)["data"]["check"]
    assert check["passed"] and (check["width"], check["height"]) == (1024, 1024)
    assert check["variance"] > check["floor"]
    [body] = fake.received()["prompts"]
    assert body["prompt"]["7"]["inputs"]["seed"] == 20240601 and body["prompt"]["7"]["inputs"]["steps"] == 10
    assert fake.received()["free_requests"] == [{"unload_models": False, "free_memory": True}]


def test_check_fails_on_a_blank_image(generate: Any, fake: Fake) -> None:
    fake.faults(blank=True)
    result = generate("--check", "--width", "512", "--height", "512", "--json")
    assert result.returncode == 1
    doc = document(result)
    assert doc["ok"] is False and doc["data"]["check"]["failures"] == ["image is blank (pixel variance 0.0 < 25)"]
    assert "health check failed" in result.stderr
