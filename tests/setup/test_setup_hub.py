"""What the Hub says before any byte moves: tokens, gated repos, missing repos/files, upstream changes, disk."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.setup.conftest import BFL, GOOD_TOKEN, Scaled, spawn, wait_until
from tests.setup.test_setup_basic import DESTS, assert_all_placed

pytestmark = pytest.mark.network


def _add_entry(scaled: Scaled, text: str) -> None:
    scaled.manifest.write_text(scaled.manifest.read_text() + "\n" + text)


def test_gated_401_without_token_falls_back_to_the_mirror(cli, scaled: Scaled) -> None:
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert f"{BFL} is gated: a token is needed; trying the next source" in result.stderr
    vae = next(f for f in json.loads(result.stdout)["data"]["files"] if f["id"] == "vae")
    assert vae["source"] == "Comfy-Org/Lumina_Image_2.0_Repackaged"


def test_gated_403_licence_not_accepted_falls_back_with_a_notice(cli, scaled: Scaled) -> None:
    result = cli("setup", "--json", env=scaled.env(HF_TOKEN=GOOD_TOKEN))
    assert result.returncode == 0, result.stderr
    assert "has not accepted the licence; trying the next source" in result.stderr
    vae = next(f for f in json.loads(result.stdout)["data"]["files"] if f["id"] == "vae")
    assert vae["source"] == "Comfy-Org/Lumina_Image_2.0_Repackaged"


def test_gated_source_is_used_once_the_licence_is_accepted(cli, scaled: Scaled) -> None:
    scaled.hub.licences.add((GOOD_TOKEN, BFL))
    result = cli("setup", "--json", env=scaled.env(HF_TOKEN=GOOD_TOKEN))
    assert result.returncode == 0, result.stderr
    vae = next(f for f in json.loads(result.stdout)["data"]["files"] if f["id"] == "vae")
    assert vae["source"] == BFL
    assert_all_placed(scaled)


def test_gated_without_fallback_says_how_to_get_access(cli, scaled: Scaled) -> None:
    text = scaled.manifest.read_text()
    scaled.manifest.write_text(text.replace('repo = "Comfy-Org/Lumina_Image_2.0_Repackaged"',
                                            f'repo = "{BFL}"').replace("split_files/vae/ae.safetensors",
                                                                       "ae.safetensors"))
    result = cli("setup", env=scaled.env())
    assert result.returncode == 1
    assert f"accept the licence at https://huggingface.co/{BFL}, then set HF_TOKEN" in result.stderr
    assert not scaled.placed(DESTS["vae"]).exists()
    assert scaled.placed(DESTS["lora"]).exists()  # the other files still arrive


def test_bad_token_is_refused_before_any_byte_moves(cli, scaled: Scaled) -> None:
    bad = "hf_thisTokenIsWrong9876"
    result = cli("setup", "--json", env=scaled.env(HF_TOKEN=bad))
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "hub.token_invalid"
    assert "refused the token" in result.stderr and "HF_TOKEN" in result.stderr
    assert bad not in result.stdout + result.stderr
    assert scaled.hub.served.bytes == 0


@pytest.mark.parametrize(("repo", "path", "message"), [
    ("nobody/no-such-repo", "x.safetensors", "repository not found"),
    ("alimama-creative/FLUX.1-Turbo-Alpha", "missing.safetensors", "no file 'missing.safetensors'"),
])
def test_repo_or_entry_not_found_is_reported_per_file(cli, scaled: Scaled, repo: str, path: str,
                                                      message: str) -> None:
    _add_entry(scaled, f'[[file]]\nid = "extra"\nfolder = "loras"\nfilename = "extra.safetensors"\n'
                       f'size = 1000\nsha256 = "{"a" * 64}"\n[[file.source]]\nrepo = "{repo}"\npath = "{path}"\n')
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 1
    extra = next(f for f in json.loads(result.stdout)["data"]["files"] if f["id"] == "extra")
    assert extra["action"] == "failed" and extra["error"]["code"] == "setup.no_source"
    assert message in result.stderr
    assert_all_placed(scaled)


def test_revision_not_found(cli, scaled: Scaled) -> None:
    text = scaled.manifest.read_text()
    commit = scaled.hub.commit("comfyanonymous/flux_text_encoders")
    scaled.manifest.write_text(text.replace(commit, "f" * 40))
    result = cli("setup", env=scaled.env())
    assert result.returncode == 1
    assert f"revision '{'f' * 40}' not found" in result.stderr


def test_upstream_change_refuses_the_source(cli, scaled: Scaled, tmp_path: Path) -> None:
    changed = tmp_path / "changed.safetensors"
    changed.write_bytes(scaled.files["lora"].read_bytes()[:-8] + b"\0" * 8)
    scaled.hub.add("alimama-creative/FLUX.1-Turbo-Alpha", "diffusion_pytorch_model.safetensors", changed)
    result = cli("setup", env=scaled.env())
    assert result.returncode == 1
    assert "upstream changed, this source is refused" in result.stderr
    assert "diffusion_pytorch_model.safetensors" not in scaled.hub.served.by_path
    assert not scaled.placed(DESTS["lora"]).exists()


def test_disk_too_small_is_refused_before_downloading(cli, scaled: Scaled) -> None:
    huge = 1 << 50  # 1 PiB: no test machine has that free
    scaled.hub.add("big/model", "huge.safetensors", None, size=huge, sha256="b" * 64)
    _add_entry(scaled, f'[[file]]\nid = "huge"\nfolder = "checkpoints"\nfilename = "huge.safetensors"\n'
                       f'size = {huge}\nsha256 = "{"b" * 64}"\n[[file.source]]\nrepo = "big/model"\n'
                       'path = "huge.safetensors"\n')
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "setup.disk_full"
    assert "GiB free" in result.stderr and "nothing was downloaded" in result.stderr
    assert scaled.hub.served.bytes == 0
    assert not any(p.suffix == ".safetensors" for p in scaled.models.rglob("*"))


def test_two_setups_on_one_models_dir_never_collide(cli, scaled: Scaled, tmp_path: Path) -> None:
    scaled.hub.faults.rate = 500_000
    first = spawn(scaled, FLUXOPS_CONNECTIONS="2")
    second_log = tmp_path / "second.err"
    second = None
    try:
        owner = scaled.models / ".fluxops-partial" / "setup.lock.owner"
        wait_until(lambda: owner.exists() and scaled.hub.served.bytes > 100_000)
        refused = cli("setup", "--no-wait", env=scaled.env())
        assert refused.returncode == 1
        assert f"is in use by fluxops setup (pid {first.pid}" in refused.stderr
        second = spawn(scaled, stderr=second_log)
        wait_until(lambda: "waiting for fluxops setup (pid" in second_log.read_text())
        scaled.hub.faults.rate = None
        _, first_err = first.communicate(timeout=60)
        second.communicate(timeout=60)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_log.read_text()
    assert_all_placed(scaled)
    assert scaled.hub.served.bytes == scaled.total  # the second found everything in place


def test_token_never_appears_in_any_output_or_file(cli, scaled: Scaled, tmp_path: Path) -> None:
    scaled.hub.licences.add((GOOD_TOKEN, BFL))
    env = scaled.env(HF_TOKEN=GOOD_TOKEN)
    outputs = [cli("setup", "--dry-run", env=env), cli("setup", "--json", env=env), cli("setup", env=env),
               cli("setup", "--dry-run", "--json", "--token", GOOD_TOKEN, env=scaled.env()),
               cli("verify", "--json", env=env)]
    assert all(r.returncode == 0 for r in outputs), [r.stderr for r in outputs]
    assert "hf_...1234" in outputs[0].stderr  # shown redacted, with its source
    for result in outputs:
        assert GOOD_TOKEN not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):  # state dir, verify cache, partial state, models
        if path.is_file() and path.stat().st_size < 10_000_000:
            assert GOOD_TOKEN.encode() not in path.read_bytes(), path
    assert not any(scaled.hub.cdn_auth_seen)


def test_dotenv_token_is_used_and_a_loose_mode_is_warned(cli, scaled: Scaled, tmp_path: Path) -> None:
    scaled.hub.licences.add((GOOD_TOKEN, BFL))
    dotenv = tmp_path / "work" / ".env"
    dotenv.write_text(f"HUGGINGFACE_TOKEN={GOOD_TOKEN}\n")
    os.chmod(dotenv, 0o644)
    result = cli("setup", "--dry-run", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert "readable by group or others" in result.stderr and "chmod 600" in result.stderr
    data = json.loads(result.stdout)["data"]
    assert data["token"]["source"] == ".env (HUGGINGFACE_TOKEN)"
    assert next(f for f in data["files"] if f["id"] == "vae")["source"] == BFL
    os.chmod(dotenv, 0o600)
    quiet = cli("setup", "--dry-run", env=scaled.env())
    assert "readable by group" not in quiet.stderr
