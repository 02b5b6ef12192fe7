"""`fluxops verify` through the real CLI: every file state, --fix, aliases, extra_model_paths, cache, JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fakes.models import SYMLINK_KINDS, FakeModel, bad_symlink, flip_byte, place, small_models, write_manifest

MODELS = small_models()


@pytest.fixture
def setup_dirs(tmp_path: Path) -> tuple[Path, Path]:
    models = tmp_path / "models"
    models.mkdir()
    manifest = write_manifest(tmp_path / "test.toml", MODELS)
    return models, manifest


def run_verify(cli, models: Path, manifest: Path, *extra: str) -> tuple[int, dict]:
    proc = cli("verify", "--models-dir", str(models), "--manifest", str(manifest), "--json", *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert doc["schema"] == "fluxops/1" and doc["command"] == "verify"
    return proc.returncode, doc


def states(doc: dict) -> dict[str, str]:
    return {f["id"]: f["state"] for f in doc["data"]["files"]}


def by_id(doc: dict, file_id: str) -> dict:
    return next(f for f in doc["data"]["files"] if f["id"] == file_id)


def test_empty_models_dir_lists_five_missing_with_the_fix(cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("verify", "--models-dir", str(empty))
    assert proc.returncode == 1
    for name in ("flux1-krea-dev_fp8_scaled", "clip_l", "t5xxl_fp16", "ae.safetensors", "FLUX.1-Turbo-Alpha"):
        assert name in proc.stdout
    assert proc.stdout.count("missing") >= 5
    assert "fluxops setup" in proc.stderr


def test_all_ok_exits_zero_and_json_shape(cli, setup_dirs) -> None:
    models, manifest = setup_dirs
    place(models, MODELS)
    code, doc = run_verify(cli, models, manifest)
    assert code == 0 and doc["ok"] is True
    data = doc["data"]
    assert set(data) >= {"manifest", "models_dir", "ok", "counts", "files", "seconds"}
    assert data["counts"] == {"ok": 5}
    first = data["files"][0]
    assert set(first) >= {"id", "dest", "state", "path", "expected_size", "actual_size", "checked_by", "hint",
                          "detail", "location"}
    assert all(f["checked_by"] == "sha256" and f["hint"] is None for f in data["files"])


def test_each_bad_state_is_reported_with_its_fix(cli, setup_dirs) -> None:
    models, manifest = setup_dirs
    place(models, MODELS, skip=("clip_l",))
    t5 = models / "text_encoders" / "t5xxl_fp16.safetensors"
    t5.write_bytes(t5.read_bytes()[:-10])  # truncated download
    vae = models / "vae" / "ae.safetensors"
    vae.write_bytes(b"<html>" + b"x" * (len(MODELS[3].data) - 6))  # an HTML page saved as a model
    flip_byte(models / "loras" / "FLUX.1-Turbo-Alpha.safetensors")  # bit rot in the data
    code, doc = run_verify(cli, models, manifest)
    assert code == 1 and doc["ok"] is False
    assert states(doc) == {"diffusion_model": "ok", "clip_l": "missing", "t5xxl": "wrong_size",
                           "vae": "malformed", "lora": "hash_mismatch"}
    assert by_id(doc, "clip_l")["hint"] == "fluxops setup"
    assert by_id(doc, "t5xxl")["hint"] == "fluxops setup --repair"
    assert "header length" in by_id(doc, "vae")["detail"]
    assert by_id(doc, "lora")["detail"].startswith("sha256 ")


def test_pickle_file_is_refused(cli, setup_dirs) -> None:
    models, manifest = setup_dirs
    place(models, MODELS)
    vae = models / "vae" / "ae.safetensors"
    vae.write_bytes(b"PK\x03\x04" + b"\0" * (len(MODELS[3].data) - 4))  # torch.save zip archive
    code, doc = run_verify(cli, models, manifest)
    assert code == 1
    assert by_id(doc, "vae")["state"] == "malformed"
    assert "pickle" in by_id(doc, "vae")["detail"]


def test_misplaced_file_is_found_and_fixed_without_overwriting(cli, setup_dirs) -> None:
    models, manifest = setup_dirs
    place(models, MODELS, skip=("lora", "clip_l"))
    # the LoRA under its Hub name in the wrong folder, clip_l in the vae folder
    (models / "diffusion_models" / "diffusion_pytorch_model.safetensors").write_bytes(MODELS[4].data)
    (models / "vae" / "clip_l.safetensors").write_bytes(MODELS[1].data)
    code, doc = run_verify(cli, models, manifest)
    assert code == 1
    assert states(doc)["lora"] == "misplaced" and states(doc)["clip_l"] == "misplaced"
    assert by_id(doc, "lora")["hint"] == "fluxops verify --fix"
    assert by_id(doc, "lora")["path"].endswith("diffusion_models/diffusion_pytorch_model.safetensors")

    code, doc = run_verify(cli, models, manifest, "--fix")
    assert code == 0, doc
    assert by_id(doc, "lora")["fixed"] is True
    assert (models / "loras" / "FLUX.1-Turbo-Alpha.safetensors").read_bytes() == MODELS[4].data
    assert not (models / "diffusion_models" / "diffusion_pytorch_model.safetensors").exists()
    assert (models / "text_encoders" / "clip_l.safetensors").read_bytes() == MODELS[1].data


def test_same_name_other_bytes_elsewhere_is_not_misplaced(cli, setup_dirs) -> None:
    models, manifest = setup_dirs
    place(models, MODELS, skip=("vae",))
    other = bytearray(MODELS[3].data)
    other[-1] ^= 0xFF
    (models / "checkpoints").mkdir()
    (models / "checkpoints" / "ae.safetensors").write_bytes(bytes(other))
    code, doc = run_verify(cli, models, manifest, "--fix")
    assert code == 1
    assert states(doc)["vae"] == "missing"
    assert (models / "checkpoints" / "ae.safetensors").exists()  # never moved, never deleted


def test_fix_never_overwrites(tmp_path: Path, isolated) -> None:
    from fluxops.errors import FluxopsError
    from fluxops.models.verify import _move_no_overwrite

    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with pytest.raises(FluxopsError) as info:
        _move_no_overwrite(src, dst)
    assert info.value.code == "verify.fix_blocked"
    assert dst.read_bytes() == b"old" and src.read_bytes() == b"new"


def test_legacy_alias_folders_count_as_found(cli, setup_dirs) -> None:
    models, manifest = setup_dirs
    place(models, MODELS, skip=("diffusion_model", "clip_l"))
    (models / "unet").mkdir()
    (models / "unet" / MODELS[0].filename).write_bytes(MODELS[0].data)
    (models / "clip").mkdir()
    (models / "clip" / MODELS[1].filename).write_bytes(MODELS[1].data)
    code, doc = run_verify(cli, models, manifest)
    assert code == 0, doc
    assert by_id(doc, "diffusion_model")["location"] == "alias"
    assert by_id(doc, "diffusion_model")["path"].endswith("unet/flux1-krea-dev_fp8_scaled.safetensors")
    assert by_id(doc, "clip_l")["location"] == "alias"


def test_extra_model_paths_yaml_counts_as_found(cli, tmp_path: Path, setup_dirs) -> None:
    models, manifest = setup_dirs
    comfy = tmp_path / "ComfyUI"
    comfy.mkdir()
    place(models, MODELS, skip=("lora", "t5xxl"))
    extra = tmp_path / "elsewhere"
    (extra / "my-loras").mkdir(parents=True)
    (extra / "my-loras" / MODELS[4].filename).write_bytes(MODELS[4].data)
    (extra / "te").mkdir()
    (extra / "te" / MODELS[2].filename).write_bytes(MODELS[2].data)
    (comfy / "extra_model_paths.yaml").write_text(
        f"mine:\n  base_path: {extra}\n  loras: |\n    other\n    my-loras\n  clip: te\n", encoding="utf-8")
    proc = cli("verify", "--models-dir", str(models), "--comfyui-dir", str(comfy), "--manifest", str(manifest),
               "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, doc
    assert by_id(doc, "lora")["location"] == str(comfy / "extra_model_paths.yaml")
    assert by_id(doc, "t5xxl")["path"] == str(extra / "te" / MODELS[2].filename)


def test_extra_model_paths_yaml_list_is_a_clear_error(cli, tmp_path: Path, setup_dirs) -> None:
    models, manifest = setup_dirs
    comfy = tmp_path / "ComfyUI"
    comfy.mkdir()
    (comfy / "extra_model_paths.yaml").write_text("mine:\n  loras:\n    - a\n    - b\n", encoding="utf-8")
    proc = cli("verify", "--models-dir", str(models), "--comfyui-dir", str(comfy), "--manifest", str(manifest))
    assert proc.returncode == 1
    assert "mine.loras must be a string with one path per line" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cache_skips_unchanged_and_rehashes_changed(cli, setup_dirs) -> None:
    models, manifest = setup_dirs
    place(models, MODELS)
    _, first = run_verify(cli, models, manifest)
    assert {f["checked_by"] for f in first["data"]["files"]} == {"sha256"}
    _, second = run_verify(cli, models, manifest)
    assert {f["checked_by"] for f in second["data"]["files"]} == {"cache"}

    lora = models / "loras" / "FLUX.1-Turbo-Alpha.safetensors"
    flip_byte(lora)
    st = lora.stat()
    os.utime(lora, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a write changes the mtime
    code, third = run_verify(cli, models, manifest)
    assert code == 1
    assert by_id(third, "lora")["checked_by"] == "sha256" and by_id(third, "lora")["state"] == "hash_mismatch"
    assert by_id(third, "vae")["checked_by"] == "cache"


def test_full_recheck_uses_blake3_and_catches_silent_bit_rot(cli, setup_dirs) -> None:
    models, manifest = setup_dirs
    place(models, MODELS)
    run_verify(cli, models, manifest)
    code, full = run_verify(cli, models, manifest, "--full")
    assert code == 0
    assert {f["checked_by"] for f in full["data"]["files"]} == {"blake3"}
    flip_byte(models / "vae" / "ae.safetensors")  # same size, same mtime: only a full check can see it
    code, cached = run_verify(cli, models, manifest)
    assert code == 0 and by_id(cached, "vae")["checked_by"] == "cache"
    code, full = run_verify(cli, models, manifest, "--full")
    assert code == 1
    # blake3 differed, so sha256 (the pin) was asked and confirmed it
    assert by_id(full, "vae")["state"] == "hash_mismatch" and by_id(full, "vae")["checked_by"] == "sha256"


def test_corrupt_cache_is_ignored(cli, setup_dirs, isolated) -> None:
    models, manifest = setup_dirs
    place(models, MODELS)
    run_verify(cli, models, manifest)
    cache = Path(isolated["FLUXOPS_STATE_DIR"]) / "cache" / "verify.json"
    assert cache.is_file()
    cache.write_text("{not json", encoding="utf-8")
    code, doc = run_verify(cli, models, manifest)
    assert code == 0
    assert {f["checked_by"] for f in doc["data"]["files"]} == {"sha256"}
    json.loads(cache.read_text(encoding="utf-8"))  # rewritten whole


def test_models_dir_unknown_is_a_usage_error(cli) -> None:
    proc = cli("verify")
    assert proc.returncode == 2
    assert "--models-dir" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_counts_do_not_depend_on_manifest_order(tmp_path: Path, isolated) -> None:
    from fluxops.models.hashing import VerifyCache
    from fluxops.models.manifest import load_manifest
    from fluxops.models.verify import State, verify

    models = tmp_path / "m"
    reordered: list[FakeModel] = list(reversed(MODELS))
    manifest = load_manifest(write_manifest(tmp_path / "r.toml", reordered))
    place(models, reordered)
    report = verify(manifest, models, VerifyCache(tmp_path / "c.json"), parallel_files=2)
    assert [f.id for f in report.files] == [m.id for m in reordered]
    assert all(f.state is State.OK for f in report.files)



@pytest.mark.parametrize("kind", SYMLINK_KINDS)
def test_a_broken_symlink_in_a_models_folder_is_not_a_file(cli, setup_dirs, kind: str) -> None:
    models, manifest = setup_dirs
    place(models, MODELS, skip=("clip_l",))
    bad_symlink(models / "checkpoints", kind, MODELS[1].filename)  # clip_l's name, elsewhere
    bad_symlink(models / "text_encoders", kind, MODELS[1].filename)  # and at its destination
    code, doc = run_verify(cli, models, manifest)  # (run_verify fails on a traceback)
    assert code == 1
    assert states(doc) == {"diffusion_model": "ok", "clip_l": "missing", "t5xxl": "ok", "vae": "ok", "lora": "ok"}


def test_a_cache_that_cannot_be_saved_is_a_notice_not_a_failure(cli, setup_dirs, isolated) -> None:
    models, manifest = setup_dirs
    place(models, MODELS)
    (Path(isolated["FLUXOPS_STATE_DIR"]) / "cache").parent.mkdir(parents=True, exist_ok=True)
    (Path(isolated["FLUXOPS_STATE_DIR"]) / "cache").write_text("a file where the cache folder should be")
    proc = cli("verify", "--models-dir", str(models), "--manifest", str(manifest), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"]["counts"] == {"ok": 5}
    assert "verify.json could not be saved" in proc.stderr and "the next run hashes again" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_fix_moves_a_misplaced_file_across_file_systems(setup_dirs, isolated, monkeypatch) -> None:
    """The misplaced copy sits on another device than its destination: os.link says EXDEV (simulated at that
    seam, as tests/test_files.py does: a second file system needs root), so it is copied beside the
    destination, linked into place, and the original removed."""
    import errno

    from typer.testing import CliRunner

    from fluxops.cli import app

    models, manifest = setup_dirs
    place(models, MODELS, skip=("vae",))
    stray = models / "checkpoints" / "ae.safetensors"
    stray.parent.mkdir()
    stray.write_bytes(MODELS[3].data)
    real_link, refused = os.link, []

    def link(src, dst, *args, **kwargs):
        if Path(src) == stray:
            refused.append(Path(dst))
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", link)
    args = ["verify", "--models-dir", str(models), "--manifest", str(manifest), "--fix", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    vae = by_id(json.loads(result.stdout), "vae")
    assert vae["state"] == "ok" and vae["fixed"] is True and vae["detail"] == f"moved from {stray}"
    dest = models / "vae" / "ae.safetensors"
    assert refused == [dest]  # the same-device link was tried first, and refused
    assert dest.read_bytes() == MODELS[3].data and not stray.exists()
    assert [p.name for p in dest.parent.iterdir()] == ["ae.safetensors"]  # no temporary copy left beside it
    again = CliRunner().invoke(app, ["verify", "--models-dir", str(models), "--manifest", str(manifest), "--json"])
    assert by_id(json.loads(again.stdout), "vae")["checked_by"] == "cache"  # the moved copy's verdict was kept
