"""ComfyUI's recorded failures mapped to errors a user can act on, and a 400 that reaches a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fluxops.comfy import failures
from fluxops.comfy.client import ComfyClient
from fluxops.errors import FluxopsError
from fluxops.generate.plan import Job
from fluxops.generate.runner import RunContext, Runner
from fluxops.generate.workflow import Overrides, build_graph, load_workflow, resolve_params
from tests.generate.conftest import DATA, Fake


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def production_graph() -> dict[str, Any]:
    wf = load_workflow()
    return build_graph(wf, resolve_params(wf, "production", Overrides(), 1))


def test_400_lists_every_failing_node_readably() -> None:
    body = load("invalid_prompts.json")["several_errors_at_once"]["body"]
    error = failures.rejected(body, production_graph())
    assert error.code == "generate.rejected"
    lines = error.message.splitlines()
    assert lines[0] == "ComfyUI refused the prompt: Prompt outputs failed validation"
    assert lines[1:] == [
        "  - Diffusion Model (UNETLoader #1): Value not in list (unet_name: 'missing-model.safetensors' not in "
        "['flux1-krea-dev_fp8_scaled.safetensors'])",
        "  - Text Encoders (DualCLIPLoader #2): Value not in list (type: 'sdxxl' not in ['sdxl', 'sd3', 'flux', "
        "'hunyuan_video', 'hidream', 'hunyuan_image'])",
        "  - Sampler (KSampler #7): Value 0 smaller than min of 1 (steps)"]


def test_unknown_class_400_names_it() -> None:
    body = load("invalid_prompts.json")["unknown_node_class"]["body"]
    assert failures.rejected(body, production_graph()).message == (
        "ComfyUI refused the prompt: Cannot execute because node NoSuchNodeClass does not exist. (Node ID '#11')")


def test_placeholder_vae_is_a_model_load_failure() -> None:
    recorded = load("flux_workflow_placeholder_models.json")["ws_messages"]
    data = next(m["data"] for m in recorded if m["type"] == "execution_error")
    error = failures.execution_failed(data, production_graph())
    assert error.code == "generate.model_load_failed" and "fluxops verify" in (error.hint or "")
    assert error.message.startswith("VAE (VAELoader #8) could not load ae.safetensors: ERROR: VAE is invalid")


@pytest.mark.parametrize("case", ["zz_not_safetensors.safetensors", "zz_truncated.safetensors",
                                  "zz_empty.safetensors"])
def test_corrupt_files_are_model_load_failures(case: str) -> None:
    data = load("corrupt_model_files.json")[case]["execution_error"]
    error = failures.execution_failed(data, {})
    assert error.code == "generate.model_load_failed"
    assert case in error.message and "Error while deserializing header" in error.message


def test_cpu_allocation_failure_is_out_of_memory_without_gpu_remedies() -> None:
    recorded = load("cpu_allocation_failure.json")["ws_messages"]
    data = next(m["data"] for m in recorded if m["type"] == "execution_error")
    error = failures.execution_failed(data, {})
    assert error.code == "generate.out_of_memory" and "ran out of memory (RAM)" in error.message
    assert "--lowvram" not in (error.hint or "")


def test_gpu_processes_are_listed_in_the_oom_hint() -> None:
    data = {"node_id": "7", "node_type": "KSampler", "exception_type": "torch.OutOfMemoryError",
            "exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB.\n"}
    shape = failures.RunShape(1, 1024, 1024, gpu_processes=["pid 42 python3 (20.0 GiB) on GPU 0"])
    error = failures.execution_failed(data, production_graph(), shape)
    assert "pid 42 python3 (20.0 GiB) on GPU 0" in (error.hint or "")


@pytest.mark.network
def test_a_400_from_the_server_is_reported_and_nothing_is_left_queued(fake: Fake, tmp_path: Path) -> None:
    wf = load_workflow()
    params = resolve_params(wf, "production", Overrides(), 1)
    good = build_graph(wf, params)
    bad = build_graph(wf, params)
    bad["7"]["inputs"]["steps"] = 0  # bypasses local validation: the server's own check answers 400
    client = ComfyClient(fake.url)
    ctx = RunContext(workflow=wf, models={}, server={}, output_dir=tmp_path)
    runner = Runner(client, [Job(0, params, good), Job(1, params, bad)], ctx)
    with pytest.raises(FluxopsError) as info:
        runner.run()
    assert info.value.code == "generate.rejected"
    assert "Sampler (KSampler #7): Value 0 smaller than min of 1 (steps)" in info.value.message
    queue = fake.get("/queue")
    assert queue["queue_pending"] == []  # the first, valid prompt was withdrawn again



def test_gpu_processes_come_from_doctors_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OOM hint's process list is read through doctor's NVML probe, here over the fake NVML seam."""
    from fluxops.generate import run
    from tests.fakes.nvml_seam import install_fake_nvml

    install_fake_nvml(monkeypatch, "rtx3090_browser")
    assert run._gpu_processes() == ["pid 1710 Xorg (180 MiB) on GPU 0", "pid 4242 firefox (1.5 GiB) on GPU 0"]
