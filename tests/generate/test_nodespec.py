"""Local validation against the recorded node specs: every problem ComfyUI would reject, said readably."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fluxops.comfy.client import ComfyClient
from fluxops.errors import FluxopsError
from fluxops.generate.nodespec import check_graph, parse_input, parse_object_info, raise_for
from fluxops.generate.plan import GenerateRequest, plan
from fluxops.generate.run import check_against_server
from fluxops.generate.workflow import Overrides, build_graph, load_workflow, resolve_params
from tests.fakes.http_stub import StubServer
from tests.generate.conftest import DATA

SPECS = parse_object_info(json.loads((DATA / "object_info_nodes.json").read_text()))


def graph(**overrides: Any) -> dict:
    wf = load_workflow()
    return build_graph(wf, resolve_params(wf, "production", Overrides(**overrides), seed=1))


def test_the_production_graph_passes() -> None:
    assert check_graph(graph(), SPECS) == []


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"steps": 0}, "Sampler (KSampler #7): --steps 0 is below the minimum of 1"),
    ({"cfg": 101.0}, "Sampler (KSampler #7): --cfg 101.0 is above the maximum of 100.0"),
    ({"width": 8}, "Image Size (EmptyLatentImage #6): --width 8 is below the minimum of 16"),
    ({"batch": 5000}, "Image Size (EmptyLatentImage #6): --batch 5000 is above the maximum of 4096"),
    ({"lora_strength": -101.0}, "--lora-strength -101.0 is below the minimum of -100.0"),
    ({"sampler": "euler_a"}, "unknown sampler 'euler_a' (did you mean 'euler'?)"),
    ({"scheduler": "karas"}, "unknown scheduler 'karas' (did you mean 'karras'?)"),
])
def test_bad_values(overrides: dict, expected: str) -> None:
    problems = check_graph(graph(**overrides), SPECS)
    assert problems and expected in str(problems[0])
    with pytest.raises(FluxopsError) as info:
        raise_for(problems)
    assert info.value.code == "workflow.invalid_value" and info.value.exit_code == 2


def test_missing_class_says_update_comfyui() -> None:
    specs = {name: spec for name, spec in SPECS.items() if name != "DualCLIPLoader"}
    problems = check_graph(graph(), specs)
    assert [p.kind for p in problems] == ["missing_class"]
    assert "this ComfyUI has no DualCLIPLoader node: update ComfyUI" in str(problems[0])
    with pytest.raises(FluxopsError) as info:
        raise_for(problems)
    assert info.value.code == "workflow.node_missing"


def test_model_not_in_the_servers_list_points_to_setup() -> None:
    g = graph()
    g["1"]["inputs"]["unet_name"] = "flux1-dev.safetensors"
    problems = check_graph(g, SPECS)
    assert [p.kind for p in problems] == ["model_missing"]
    assert "'flux1-dev.safetensors' is not in this ComfyUI's diffusion_models list" in str(problems[0])
    with pytest.raises(FluxopsError) as info:
        raise_for(problems)
    assert info.value.code == "workflow.model_missing" and "fluxops setup" in (info.value.hint or "")


def test_several_problems_are_all_listed() -> None:
    g = graph(steps=0, sampler="nope")
    g["9"]["inputs"]["vae"] = [8, 0]  # an integer node id: ComfyUI rejects it
    with pytest.raises(FluxopsError) as info:
        raise_for(check_graph(g, SPECS))
    text = info.value.message
    assert "3 problems, nothing was sent" in text and "--steps 0" in text and "'nope'" in text
    assert "links to node 8, which is not in the graph" in text


def test_link_type_mismatch() -> None:
    g = graph()
    g["9"]["inputs"]["vae"] = ["1", 0]
    assert "vae: expects VAE but node 1 gives MODEL" in str(check_graph(g, SPECS)[0])


def test_both_combo_forms_parse() -> None:
    legacy = parse_input("x", [["a", "b"], {}], True)
    v3 = parse_input("x", ["COMBO", {"options": ["a", "b"], "multiselect": False}], True)
    assert legacy.options == v3.options == ("a", "b") and legacy.type == v3.type == "COMBO"


@pytest.mark.network
def test_later_jobs_add_only_their_own_seed_problems() -> None:
    """Jobs differ only in their seed: a seed past the server's maximum is reported for the job that has it,
    and the problems every job shares are reported once."""
    info = json.loads((DATA / "object_info_nodes.json").read_text())
    info["KSampler"]["input"]["required"]["seed"][1]["max"] = 100
    info["KSampler"]["input"]["required"]["steps"][1]["max"] = 5  # narrower than core ComfyUI: the server wins

    def route(path: str, _headers: Any) -> tuple[int, dict[str, str], Any]:
        name = path.removeprefix("/object_info/")
        return 200, {}, {name: info[name]} if name in info else {}

    request = GenerateRequest(overrides=Overrides(steps=8), seed=99, count=3)
    with StubServer(route) as server, pytest.raises(FluxopsError) as raised:
        check_against_server(ComfyClient(server.url), plan(request, None))
    assert raised.value.message.splitlines() == [
        "2 problems, nothing was sent to ComfyUI:",
        "  - Sampler (KSampler #7): --steps 8 is above the maximum of 5",
        "  - Sampler (KSampler #7): --seed 101 is above the maximum of 100",
    ]
