"""`fluxops doctor` as a user runs it: a real subprocess, with the fake NVML first on PYTHONPATH."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fluxops.doctor import CHECK_IDS
from tests.doctor.conftest import nvml_env
from tests.fakes.comfy_python import calls, make_fake_python

TOKEN = "hf_PlantedReportToken0123456789abcdef"
CHECK_KEYS = {"id", "group", "status", "summary", "details", "fix", "facts"}


def _real_nvml_loads() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


@pytest.mark.skipif(_real_nvml_loads(), reason="this machine has a working NVIDIA driver")
def test_no_gpu_machine_real_nvml(cli):
    proc = cli("doctor")
    assert proc.returncode == 1
    assert "[✗] no NVIDIA driver" in proc.stdout and "(gpu.driver)" in proc.stdout
    assert "fix: install the NVIDIA driver" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_no_driver_scenario(cli):
    proc = cli("doctor", env=nvml_env("no_driver"))
    assert proc.returncode == 1 and "[✗] no NVIDIA driver" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Doctor found problems: 1 failed" in proc.stdout


def test_json_document_shape(cli):
    proc = cli("doctor", "--json", env=nvml_env("rtx3090_browser"))
    doc = json.loads(proc.stdout)  # exactly one document on stdout
    assert set(doc) == {"schema", "command", "ok", "data"}
    assert doc["schema"] == "fluxops/1" and doc["command"] == "doctor"
    data = doc["data"]
    assert set(data) == {"ok", "strict", "counts", "seconds", "checks"} and data["ok"] == doc["ok"]
    assert [c["id"] for c in data["checks"]] == list(CHECK_IDS)
    for check in data["checks"]:
        assert set(check) == CHECK_KEYS
        assert check["status"] in {"ok", "warn", "fail", "skip"}
        if check["status"] in ("warn", "fail"):
            assert check["fix"]
    assert sum(data["counts"].values()) == len(CHECK_IDS)
    by_id = {c["id"]: c for c in data["checks"]}
    assert by_id["gpu.processes"]["status"] == "warn"
    assert by_id["gpu.devices"]["facts"]["devices"][0]["name"] == "NVIDIA GeForce RTX 3090"
    assert proc.returncode == (0 if doc["ok"] else 1)


def test_subset_by_id_and_group(cli):
    proc = cli("doctor", "--json", "python", "gpu", env=nvml_env("rtx3090_browser"))
    ids = [c["id"] for c in json.loads(proc.stdout)["data"]["checks"]]
    assert ids == ["python", "gpu.driver", "gpu.devices", "gpu.processes", "gpu.vram_budget"]


def test_unknown_check_is_a_usage_error(cli):
    proc = cli("doctor", "gpu.nope")
    assert proc.returncode == 2 and "no check named 'gpu.nope'" in proc.stderr


def test_list(cli):
    proc = cli("doctor", "--list", "--json")
    assert [c["id"] for c in json.loads(proc.stdout)["data"]] == list(CHECK_IDS)


def test_warnings_pass_unless_strict(cli):
    env = nvml_env("rtx3090_browser")
    relaxed = cli("doctor", "gpu", env=env)
    assert relaxed.returncode == 0, relaxed.stdout
    assert "[!] 1 other program(s) hold 1.5 GiB" in relaxed.stdout and "firefox" in relaxed.stdout
    assert "NVIDIA GPU and CUDA" in relaxed.stdout and "[✓] NVIDIA driver 550.54.14" in relaxed.stdout
    assert cli("doctor", "gpu", "--strict", env=env).returncode == 1


@pytest.mark.skipif(os.name == "nt", reason="the fake interpreter is a POSIX shell script")
def test_torch_answer_is_cached_across_runs(cli, tmp_path: Path):
    exe = make_fake_python(tmp_path / "py", "cuda124")
    env = nvml_env("rtx3090_browser")
    first = cli("doctor", "torch.cuda", "--comfyui-python", str(exe), env=env)
    second = cli("doctor", "torch.cuda", "-v", "--comfyui-python", str(exe), env=env)
    assert first.returncode == 0 and second.returncode == 0
    assert "[✓] torch 2.5.1+cu124 (CUDA 12.4) sees 1 GPU(s)" in second.stdout and "[cached]" in second.stdout
    assert calls(tmp_path / "py").count("query") == 1


def test_report_redacts_token_gpu_ids_user_and_home(cli, isolated, tmp_path: Path):
    user = "plantedalice"
    comfy = Path(isolated["HOME"]) / user / "ComfyUI"
    comfy.mkdir(parents=True)
    (comfy / "main.py").write_text("", encoding="utf-8")
    env = {**nvml_env("two_gpus"), "HF_TOKEN": TOKEN, "USER": user, "LOGNAME": user}
    report = tmp_path / "out" / "doctor.txt"
    proc = cli("doctor", "-v", "--comfyui-dir", str(comfy), "--report", str(report), env=env)
    assert proc.returncode == 1 and "report written to" in proc.stderr
    text = report.read_text(encoding="utf-8")
    assert "(gpu.devices)" in text and "NVIDIA RTX A6000" in text and "facts:" in text
    for secret in (
        TOKEN,
        "GPU-11111111-2222-3333-4444-555555555555",
        "GPU-a7c3e9d1-0b2f-4e6a-8c5d-9f1e2d3c4b5a",
        "1322021012345",
        "1322021067890",
        isolated["HOME"],
        user,
    ):
        assert secret not in text, secret
    assert "<redacted>" in text and "~/<user>/ComfyUI" in text


def test_report_unwritable(cli, tmp_path: Path):
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    proc = cli("doctor", "python", "--report", str(tmp_path / "afile" / "r.txt"), env=nvml_env("no_driver"))
    assert proc.returncode == 1 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr
