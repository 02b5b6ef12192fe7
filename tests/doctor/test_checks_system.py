"""python, system.ram, system.disk, models and token, run in-process."""

from __future__ import annotations

import os

import pytest

from fluxops.doctor import DoctorOptions, Status
from fluxops.doctor.checks_system import check_disk, check_ram
from fluxops.doctor.context import DoctorContext, Memory
from fluxops.models.hashing import VerifyCache
from fluxops.models.manifest import load_manifest
from fluxops.models.verify import verify
from fluxops.units import GIB
from tests.doctor.modelkit import make_models
from tests.fakes.http_stub import StubServer, hub_auth_routes
from tests.helpers import run_checks

TOKEN = "hf_PlantedDoctorToken0123456789abcdef"


def _models(tmp_path, **kwargs):
    models = tmp_path / "models"
    return {
        "models_dir": models,
        "manifest": make_models(models, tmp_path / "m.toml", hash_files=True, **kwargs),
    }


def test_python(make_settings):
    check = run_checks(make_settings(), "python")["python"]
    assert check.status is Status.OK and check.facts["version"].count(".") == 2


def test_models_verified_by_the_cache_are_ok(make_settings, tmp_path):
    paths = _models(tmp_path)
    settings = make_settings(**paths)
    assert run_checks(settings, "models")["models"].status is Status.WARN  # present, never verified
    report = verify(
        load_manifest(paths["manifest"]), paths["models_dir"], VerifyCache(settings.cache_dir / "verify.json")
    )
    assert report.ok
    models = run_checks(settings, "models")["models"]
    assert models.status is Status.OK and "verified" in models.summary


def test_unverified_models_point_to_verify(make_settings, tmp_path):
    models = run_checks(make_settings(**_models(tmp_path)), "models")["models"]
    assert models.status is Status.WARN and models.fix == "fluxops verify"


def test_missing_model_points_to_setup_and_counts_for_disk(make_settings, tmp_path):
    paths = _models(tmp_path, skip=("t5xxl",))
    got = run_checks(make_settings(**paths), "models", "system.disk")
    assert got["models"].status is Status.FAIL and got["models"].fix == "fluxops setup"
    assert "text_encoders/t5xxl_fp16.safetensors" in got["models"].summary
    size = load_manifest(paths["manifest"]).by_id("t5xxl").size
    assert got["system.disk"].facts["bytes_to_download"] == size
    assert got["system.disk"].status is Status.OK  # a few hundred bytes fit anywhere


def _checked(check, settings, *, memory: Memory | None = None, free: int | None = None):
    """One check in-process, with the machine's memory and free disk space set by the test."""
    seams = {}
    if memory is not None:
        seams["memory"] = lambda: memory
    if free is not None:
        seams["disk_free"] = lambda _path: free
    return check(DoctorContext(settings, DoctorOptions(), dict(os.environ), **seams))


@pytest.mark.parametrize("free", [GIB, 100 * GIB])
def test_disk_too_small_for_the_download_fails(make_settings, free):
    settings = make_settings(models_dir=os.getcwd())  # the packaged manifest: 21.4 GiB, nothing present
    disk = _checked(check_disk, settings, free=free)
    free = disk.facts["models_free_bytes"]
    assert disk.facts["bytes_to_download"] == 22_968_011_660
    assert disk.status is (Status.FAIL if free < 22_968_011_660 else Status.OK)
    if disk.status is Status.FAIL:
        assert disk.summary == "21.4 GiB still to download but only 1.0 GiB free for the models"
        assert disk.fix.startswith("free 20.6 GiB at ")  # what is missing, with setup's margin


def test_little_room_for_images_warns(make_settings, tmp_path):
    disk = _checked(check_disk, make_settings(**_models(tmp_path)), free=GIB // 2)
    assert disk.status is Status.WARN and disk.facts["bytes_to_download"] == 0
    assert disk.summary.startswith("only 512 MiB free for images at ")


@pytest.mark.parametrize(("available", "swap", "status"), [
    (8 * GIB, 0, Status.OK),
    (2 * GIB, GIB, Status.WARN),  # short of every model at once, enough for the largest with swap
    (GIB, 0, Status.FAIL),  # not even the largest model and the runtime fit
])
def test_ram_compares_available_with_the_model_weights(make_settings, tmp_path, available, swap, status):
    memory = Memory(total=16 * GIB, available=available, swap_free=swap)
    ram = _checked(check_ram, make_settings(**_models(tmp_path)), memory=memory)
    assert ram.facts["needed_bytes"] > ram.facts["minimum_bytes"] > 2 * 1024**3
    assert ram.status is status
    assert ram.facts["available_bytes"] == available and ram.facts["swap_free_bytes"] == swap


def test_no_models_dir_skips(make_settings):
    assert run_checks(make_settings(), "models")["models"].status is Status.SKIP


def test_token_absent_but_not_needed(make_settings):
    token = run_checks(make_settings(), "token")["token"]
    assert token.status is Status.OK and token.facts["present"] is False


def test_token_needed_for_a_gated_only_file(make_settings, tmp_path):
    paths = _models(tmp_path, skip=("vae",), gated_only=True)
    token = run_checks(make_settings(**paths), "token")["token"]
    assert token.status is Status.FAIL and "HF_TOKEN" in token.fix


def test_huggingface_token_name_is_read_like_setup_does(make_settings, monkeypatch):
    monkeypatch.setenv("HUGGINGFACE_TOKEN", TOKEN)
    token = run_checks(make_settings(), "token")["token"]
    assert token.status is Status.OK and token.facts["source"] == "HUGGINGFACE_TOKEN"
    assert any("huggingface_hub and the hf CLI do not" in line for line in token.details)


def test_token_in_a_world_readable_dotenv_warns(make_settings, tmp_path):
    dotenv = tmp_path / "work" / ".env"  # the cwd of the isolated fixture
    dotenv.write_text(f"HF_TOKEN={TOKEN}\n", encoding="utf-8")
    dotenv.chmod(0o644)
    token = run_checks(make_settings(), "token")["token"]
    assert token.status is Status.WARN and token.facts["source"] == ".env (HF_TOKEN)"
    assert token.fix == f"chmod 600 {dotenv}"


def test_token_present_offline_is_not_contacted(make_settings, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: any contact would fail
    token = run_checks(make_settings(), "token")["token"]
    assert token.status is Status.OK
    assert token.facts == {"present": True, "source": "HF_TOKEN", "token": "hf_...cdef", "online": False}
    assert TOKEN not in token.summary


def _online(make_settings, monkeypatch, tmp_path, valid: dict[str, str], denied: set[str], **kw):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with StubServer(hub_auth_routes(valid, denied)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        result = run_checks(make_settings(**_models(tmp_path, **kw)), "token", online=True)["token"]
    return result, hub.requests


def test_online_valid_token_with_gated_access(make_settings, monkeypatch, tmp_path):
    token, requests = _online(make_settings, monkeypatch, tmp_path, {TOKEN: "alice"}, set())
    assert token.status is Status.OK and token.facts["user"] == "alice"
    assert "/api/models/black-forest-labs/FLUX.1-dev/auth-check" in requests


def test_online_invalid_token(make_settings, monkeypatch, tmp_path):
    token, _ = _online(make_settings, monkeypatch, tmp_path, {}, set())
    assert token.status is Status.FAIL and "not valid" in token.summary and "settings/tokens" in token.fix


def test_online_gated_repo_with_a_mirror_warns(make_settings, monkeypatch, tmp_path):
    token, _ = _online(make_settings, monkeypatch, tmp_path, {TOKEN: "alice"}, {"black-forest-labs/FLUX.1-dev"})
    assert token.status is Status.WARN and "huggingface.co/black-forest-labs/FLUX.1-dev" in token.fix


def test_online_gated_repo_without_a_mirror_fails(make_settings, monkeypatch, tmp_path):
    token, _ = _online(
        make_settings,
        monkeypatch,
        tmp_path,
        {TOKEN: "alice"},
        {"black-forest-labs/FLUX.1-dev"},
        gated_only=True,
    )
    assert token.status is Status.FAIL and "accept the licence" in token.fix


def test_an_interrupted_download_counts_what_it_already_holds(make_settings, tmp_path):
    import json

    from fluxops.hub.partial import PartPaths, RangeSet

    paths = _models(tmp_path, skip=("t5xxl",))
    spec = load_manifest(paths["manifest"]).by_id("t5xxl")
    part = PartPaths.for_sha(paths["models_dir"], spec.sha256)
    part.part.parent.mkdir(parents=True)
    part.part.write_bytes(b"\0" * 100)
    done = RangeSet([(0, 100)]).as_list()
    part.state.write_text(json.dumps({"version": 1, "size": spec.size, "done": done}), encoding="utf-8")
    disk = run_checks(make_settings(**paths), "system.disk")["system.disk"]
    assert disk.facts["bytes_to_download"] == spec.size - 100
