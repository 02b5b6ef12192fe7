"""Manifest loading: the shipped manifest, and a precise error for every kind of broken manifest."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest

from fluxops.errors import FluxopsError
from fluxops.models.manifest import load_manifest, parse_manifest
from fluxops.settings import packaged_manifest
from tests.conftest import REPO
from tests.fakes.models import manifest_toml, small_models

GOOD = manifest_toml(small_models())


def test_packaged_manifest_is_the_five_files() -> None:
    manifest = load_manifest(packaged_manifest())
    assert [f.dest for f in manifest.files] == [
        "diffusion_models/flux1-krea-dev_fp8_scaled.safetensors",
        "text_encoders/clip_l.safetensors",
        "text_encoders/t5xxl_fp16.safetensors",
        "vae/ae.safetensors",
        "loras/FLUX.1-Turbo-Alpha.safetensors",
    ]
    assert manifest.total_bytes == 22_968_011_660
    vae = manifest.by_id("vae")
    assert [(s.repo, s.gated) for s in vae.sources] == [
        ("black-forest-labs/FLUX.1-dev", True), ("Comfy-Org/Lumina_Image_2.0_Repackaged", False)]
    lora = manifest.by_id("lora")
    assert lora.sources[0].path == "diffusion_pytorch_model.safetensors"


def test_checkout_manifest_is_the_packaged_one() -> None:
    assert filecmp.cmp(REPO / "manifests" / "flux-krea-turbo.toml", packaged_manifest(), shallow=False)


def _replace_first(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


CASES = {
    "not_toml": (lambda t: t + "\n[[file\n", "not valid TOML"),
    "unknown_top_key": (lambda t: "colour = 1\n" + t, "manifest.colour: unknown key"),
    "missing_top_key": (lambda t: _replace_first(t, 'name = "test-models"', ""), "manifest.name: missing"),
    "unknown_file_key": (lambda t: _replace_first(t, 'id = "clip_l"', 'id = "clip_l"\nsha1 = "x"'),
                         "file[1] (clip_l).sha1: unknown key"),
    "missing_file_key": (lambda t: _replace_first(t, 'folder = "vae"\n', ""), "file[3] (vae).folder: missing"),
    "sha256_short": (lambda t: _replace_first(t, 'sha256 = "', 'sha256 = "ab'), "file[0] (diffusion_model).sha256"),
    "sha256_upper": (lambda t: t.replace(small_models()[1].sha256, small_models()[1].sha256.upper()),
                     "file[1] (clip_l).sha256"),
    "size_zero": (lambda t: _replace_first(t, f"size = {len(small_models()[0].data)}", "size = 0"),
                  "file[0] (diffusion_model).size"),
    "size_negative": (lambda t: _replace_first(t, f"size = {len(small_models()[0].data)}", "size = -5"),
                      "file[0] (diffusion_model).size"),
    "dest_absolute": (lambda t: _replace_first(t, 'filename = "ae.safetensors"', 'filename = "/etc/ae.safetensors"'),
                      "file[3] (vae).filename"),
    "dest_dotdot": (lambda t: _replace_first(t, 'filename = "ae.safetensors"', 'filename = "../ae.safetensors"'),
                    "file[3] (vae).filename"),
    "dest_separator": (lambda t: _replace_first(t, 'filename = "ae.safetensors"',
                                                'filename = "sub/ae.safetensors"'), "file[3] (vae).filename"),
    "dest_pickle": (lambda t: _replace_first(t, 'filename = "ae.safetensors"', 'filename = "ae.ckpt"'),
                    "pickle"),
    "unknown_folder": (lambda t: _replace_first(t, 'folder = "vae"', 'folder = "vaes"'),
                       "file[3] (vae).folder: unknown ComfyUI folder 'vaes'"),
    "alias_folder": (lambda t: _replace_first(t, 'folder = "diffusion_models"', 'folder = "unet"'),
                     "legacy alias; write 'diffusion_models'"),
    "duplicate_dest": (lambda t: _replace_first(t, 'filename = "t5xxl_fp16.safetensors"',
                                                'filename = "clip_l.safetensors"'),
                       "same destination text_encoders/clip_l.safetensors"),
    "source_without_repo": (lambda t: _replace_first(t, 'repo = "comfyanonymous/flux_text_encoders"\n', ""),
                            "file[1] (clip_l).source[0].repo: missing"),
    "source_without_path": (lambda t: _replace_first(t, 'path = "clip_l.safetensors"\n', ""),
                            "file[1] (clip_l).source[0].path: missing"),
    "no_sources": (lambda t: t.replace('[[file.source]]\nrepo = "alimama-creative/FLUX.1-Turbo-Alpha"\n'
                                       'path = "diffusion_pytorch_model.safetensors"\nrevision = "main"\n'
                                       'gated = false\n', ""), "file[4] (lora).source: missing"),
    "gated_not_bool": (lambda t: _replace_first(t, "gated = true", 'gated = "yes"'), "source[0].gated"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_manifest_names_the_field(case: str, tmp_path: Path) -> None:
    mutate, expected = CASES[case]
    path = tmp_path / "broken.toml"
    path.write_text(mutate(GOOD), encoding="utf-8")
    with pytest.raises(FluxopsError) as info:
        load_manifest(path)
    assert info.value.code == "manifest.invalid"
    assert str(path) in info.value.message
    assert expected in info.value.message


def test_good_test_manifest_loads(tmp_path: Path) -> None:
    manifest = parse_manifest(GOOD, tmp_path / "m.toml")
    assert [f.id for f in manifest.files] == ["diffusion_model", "clip_l", "t5xxl", "vae", "lora"]


@pytest.mark.parametrize("case", ["not_toml", "sha256_short", "dest_dotdot", "source_without_path"])
def test_cli_reports_bad_manifest_in_one_line(case: str, cli, tmp_path: Path) -> None:
    mutate, expected = CASES[case]
    path = tmp_path / "broken.toml"
    path.write_text(mutate(GOOD), encoding="utf-8")
    proc = cli("verify", "--models-dir", str(tmp_path), "--manifest", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert expected in proc.stderr.replace("\n", " ") or expected in proc.stderr
    assert "fix:" in proc.stderr


def test_cli_missing_manifest_file(cli, tmp_path: Path) -> None:
    proc = cli("verify", "--models-dir", str(tmp_path), "--manifest", str(tmp_path / "nope.toml"), "--json")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "manifest.unreadable"


def test_the_packaged_manifest_pins_a_comfyui_release() -> None:
    pin = load_manifest(packaged_manifest()).require_comfyui()
    assert (pin.url, pin.tag) == ("https://github.com/comfyanonymous/ComfyUI.git", "v0.3.64")
    assert pin.commit == "637221995f7424a561bd825de3e61ea117dfe1e3" and pin.python == ">=3.9"


@pytest.mark.parametrize(("table", "message"), [
    ('url = "u"\ntag = "v1"\ncommit = "abc"\n', "comfyui.commit: 'abc' must be a full commit id"),
    ('url = "u"\ncommit = "' + "a" * 40 + '"\n', "comfyui.tag: missing required key"),
    ('url = "u"\ntag = "v1"\ncommit = "' + "a" * 40 + '"\nbranch = "master"\n', "comfyui.branch: unknown key"),
    ('url = "u"\ntag = "v1"\ncommit = "' + "a" * 40 + '"\npython = "3.10+"\n', "comfyui.python: '3.10+' is not"),
])
def test_a_broken_comfyui_table_names_the_field(table: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(FluxopsError) as info:
        parse_manifest(GOOD.replace("[[file]]", "[comfyui]\n" + table + "\n[[file]]", 1), tmp_path / "m.toml")
    assert info.value.code == "manifest.invalid" and message in info.value.message


def test_a_manifest_without_comfyui_table_still_loads_but_cannot_install(tmp_path: Path) -> None:
    manifest = parse_manifest(GOOD, tmp_path / "m.toml")
    assert manifest.comfyui is None and manifest.files
    with pytest.raises(FluxopsError) as info:
        manifest.require_comfyui()
    assert "no [comfyui] table" in info.value.message
