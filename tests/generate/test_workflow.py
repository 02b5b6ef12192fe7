"""The packaged workflow, presets, overrides and roles (in-process: no server involved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxops.errors import FluxopsError
from fluxops.generate.workflow import PRESETS, Overrides, build_graph, load_workflow, packaged_workflow, resolve_params
from fluxops.models.manifest import load_manifest
from fluxops.settings import packaged_manifest
from tests.fakes.models import small_models, write_manifest

REPO = Path(__file__).resolve().parents[2]


def test_packaged_workflow_is_the_issue_graph() -> None:
    wf = load_workflow()
    graph = wf.graph
    assert {role: graph[node]["class_type"] for role, node in wf.roles.items()} == {
        "diffusion_model": "UNETLoader", "text_encoders": "DualCLIPLoader", "lora": "LoraLoader",
        "positive": "CLIPTextEncode", "negative": "CLIPTextEncode", "latent": "EmptyLatentImage",
        "sampler": "KSampler", "vae": "VAELoader", "save": "SaveImage"}
    lora = wf.node("lora")["inputs"]
    assert lora["model"] == [wf.roles["diffusion_model"], 0] and lora["clip"] == [wf.roles["text_encoders"], 0]
    assert wf.node("positive")["inputs"]["clip"] == [wf.roles["lora"], 1]
    assert wf.node("negative")["inputs"]["clip"] == [wf.roles["lora"], 1]
    sampler = wf.node("sampler")["inputs"]
    assert (sampler["steps"], sampler["cfg"], sampler["sampler_name"], sampler["scheduler"], sampler["denoise"]) \
        == (10, 2.0, "euler", "simple", 1.0)
    assert wf.node("latent")["inputs"] == {"width": 1024, "height": 1024, "batch_size": 1}
    assert wf.node("save")["inputs"]["filename_prefix"] == "production_photo_"
    assert wf.node("text_encoders")["inputs"]["type"] == "flux"
    assert wf.node("positive")["inputs"]["text"].startswith("professional photography, cinematic lighting")
    assert wf.node("negative")["inputs"]["text"].endswith("uncanny, valley, creepy")


def test_checkout_symlink_is_the_packaged_file() -> None:
    link = REPO / "workflows" / "production_photorealistic_turbo.json"
    assert link.resolve() == packaged_workflow().resolve()


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_sets_steps_cfg_and_lora(name: str) -> None:
    wf = load_workflow()
    params = resolve_params(wf, name, Overrides(), seed=7)
    graph = build_graph(wf, params)
    preset = PRESETS[name]
    sampler, lora = graph[wf.roles["sampler"]]["inputs"], graph[wf.roles["lora"]]["inputs"]
    assert (sampler["steps"], sampler["cfg"], sampler["seed"]) == (preset.steps, preset.cfg, 7)
    assert lora["strength_model"] == lora["strength_clip"] == preset.lora_strength
    # nothing else changed
    original = json.loads(packaged_workflow().read_text())
    for node in ("1", "2", "5", "8", "9", "10"):
        assert graph[node] == original[node]


def test_preset_values_are_the_issue_table() -> None:
    assert {n: (p.steps, p.cfg, p.lora_strength) for n, p in PRESETS.items()} == {
        "fast": (8, 1.5, 0.8), "production": (10, 2.0, 0.75), "quality": (12, 2.5, 0.7), "premium": (15, 3.0, 0.6)}


def test_manifest_names_the_model_files(tmp_path: Path) -> None:
    models = small_models()
    renamed = [m if m.id != "vae" else type(m)(**{**m.__dict__, "filename": "flux_ae_v2.safetensors"})
               for m in models]
    manifest = load_manifest(write_manifest(tmp_path / "m.toml", renamed))
    wf = load_workflow()
    graph = build_graph(wf, resolve_params(wf, "production", Overrides(), 1), manifest)
    assert graph["8"]["inputs"]["vae_name"] == "flux_ae_v2.safetensors"
    default = build_graph(wf, resolve_params(wf, "production", Overrides(), 1), load_manifest(packaged_manifest()))
    assert [default[n]["inputs"][k] for n, k in (("1", "unet_name"), ("2", "clip_name1"), ("2", "clip_name2"),
                                                 ("3", "lora_name"))] == [
        "flux1-krea-dev_fp8_scaled.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors",
        "FLUX.1-Turbo-Alpha.safetensors"]


def test_roles_are_found_by_title_not_id(tmp_path: Path) -> None:
    original = json.loads(packaged_workflow().read_text())
    renumber = {old: f"n{int(old) * 7}" for old in original}

    def relink(value: object) -> object:
        return [renumber[value[0]], value[1]] if isinstance(value, list) else value

    graph = {renumber[k]: {**v, "inputs": {n: relink(x) for n, x in v["inputs"].items()}} for k, v in original.items()}
    path = tmp_path / "renumbered.json"
    path.write_text(json.dumps(graph))
    wf = load_workflow(path)
    built = build_graph(wf, resolve_params(wf, "fast", Overrides(prompt="a cat", negative="dogs"), 3))
    assert built["n28"]["inputs"]["text"] == "a cat" and built["n35"]["inputs"]["text"] == "dogs"
    assert built["n49"]["inputs"]["steps"] == 8


def test_ui_format_is_refused_with_how_to_export(tmp_path: Path) -> None:
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"last_node_id": 10, "nodes": [{"id": 1, "type": "KSampler"}], "links": []}))
    with pytest.raises(FluxopsError) as info:
        load_workflow(path)
    assert info.value.code == "workflow.ui_format"
    assert "Export (API)" in (info.value.hint or "")


def test_missing_role_names_the_title(tmp_path: Path) -> None:
    graph = json.loads(packaged_workflow().read_text())
    del graph["7"]["_meta"]
    graph["7"]["class_type"] = "KSamplerAdvanced"
    path = tmp_path / "w.json"
    path.write_text(json.dumps(graph))
    with pytest.raises(FluxopsError) as info:
        load_workflow(path)
    assert info.value.code == "workflow.role_missing" and "'Sampler'" in info.value.message
