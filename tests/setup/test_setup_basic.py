"""`fluxops setup` against the fake Hub over real loopback HTTP: the clean path, idempotence, plan, layout."""

from __future__ import annotations

import json

import pytest

from tests.fakes.models import SYMLINK_KINDS, bad_symlink
from tests.setup.conftest import Scaled, kill_partway, tree

pytestmark = pytest.mark.network

DESTS = {"clip_l": "text_encoders/clip_l.safetensors", "vae": "vae/ae.safetensors",
         "lora": "loras/FLUX.1-Turbo-Alpha.safetensors"}


def assert_all_placed(scaled: Scaled) -> None:
    for file_id, dest in DESTS.items():
        assert scaled.placed(dest).read_bytes() == scaled.files[file_id].read_bytes(), dest


def test_clean_download_places_every_file_bit_exact(cli, scaled: Scaled) -> None:
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["command"] == "setup"
    assert {f["action"] for f in doc["data"]["files"]} == {"placed"}
    assert_all_placed(scaled)  # several 256 KiB segments per file, reassembled bit-exact
    assert not list((scaled.models / ".fluxops-partial").glob("*.part"))
    assert not list((scaled.models / ".fluxops-partial").glob("*.state.json"))
    assert scaled.hub.served.bytes == scaled.total  # every byte fetched exactly once
    assert scaled.hub.cdn_auth_seen and not any(scaled.hub.cdn_auth_seen)
    # one line per file event on stderr without a terminal
    assert "lora: placed loras/FLUX.1-Turbo-Alpha.safetensors" in result.stderr


def test_second_run_skips_verified_files_without_any_network_call(cli, scaled: Scaled) -> None:
    assert cli("setup", env=scaled.env()).returncode == 0
    requests_before = len(scaled.hub.log)
    again = cli("setup", "--json", env=scaled.env())
    assert again.returncode == 0, again.stderr
    assert len(scaled.hub.log) == requests_before  # no HEAD, no GET: the verify cache answered
    assert {f["action"] for f in json.loads(again.stdout)["data"]["files"]} == {"present"}
    verify = cli("verify", "--json", env=scaled.env())  # placed files were recorded in the verify cache
    assert verify.returncode == 0
    assert {f["checked_by"] for f in json.loads(verify.stdout)["data"]["files"]} == {"cache"}


def test_dry_run_prints_the_plan_and_touches_nothing(cli, scaled: Scaled) -> None:
    before = tree(scaled.models)
    result = cli("setup", "--dry-run", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert tree(scaled.models) == before  # no partial dir, no lock, no file
    data = json.loads(result.stdout)["data"]
    assert data["dry_run"] is True and data["to_fetch"] == scaled.total
    assert data["free_bytes"] > 0
    plan = {f["id"]: f for f in data["files"]}
    assert plan["vae"]["source"] == "Comfy-Org/Lumina_Image_2.0_Repackaged"  # the gated one was passed over
    assert plan["lora"]["action"] == "download" and plan["lora"]["resume_from"] == 0
    assert scaled.hub.served.bytes == 0
    human = cli("setup", "--dry-run", env=scaled.env())
    assert "total to fetch" in human.stdout and "free at" in human.stdout


@pytest.mark.parametrize("kind", SYMLINK_KINDS)
def test_dry_run_passes_over_a_broken_symlink_in_a_models_folder(cli, scaled: Scaled, kind: str) -> None:
    bad_symlink(scaled.models / "checkpoints", kind, "ae.safetensors")  # the missing VAE's name, elsewhere
    result = cli("setup", "--dry-run", "--json", env=scaled.env())
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    plan = {f["id"]: f for f in json.loads(result.stdout)["data"]["files"]}
    assert plan["vae"]["state"] == "missing" and plan["vae"]["action"] == "download"


def test_dry_run_shows_the_resume_point_of_a_partial(cli, scaled: Scaled) -> None:
    scaled.hub.faults.rate = 300_000
    kill_partway(scaled, 1_200_000, FLUXOPS_CONNECTIONS="1", FLUXOPS_JOBS="1")
    scaled.hub.faults.rate = None
    result = cli("setup", "--dry-run", "--json", env=scaled.env())
    plan = {f["id"]: f for f in json.loads(result.stdout)["data"]["files"]}
    resumed = [f for f in plan.values() if f["resume_from"] > 0]
    assert resumed, plan
    assert all(f["to_fetch"] == f["size"] - f["resume_from"] for f in resumed)


def test_misplaced_file_is_moved_into_place_without_download(cli, scaled: Scaled) -> None:
    wrong = scaled.models / "checkpoints" / "clip_l.safetensors"
    wrong.parent.mkdir()
    wrong.write_bytes(scaled.files["clip_l"].read_bytes())
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    assert scaled.placed(DESTS["clip_l"]).read_bytes() == scaled.files["clip_l"].read_bytes()
    assert "clip_l.safetensors" not in scaled.hub.served.by_path


def test_prune_partials_removes_only_what_no_entry_needs(cli, scaled: Scaled) -> None:
    partial = scaled.models / ".fluxops-partial"
    partial.mkdir()
    import hashlib

    needed = hashlib.sha256(scaled.files["lora"].read_bytes()).hexdigest()
    (partial / f"{needed}.part").write_bytes(b"x" * 10)
    stray = "0" * 64
    (partial / f"{stray}.part").write_bytes(b"y" * 1000)
    (partial / f"{stray}.state.json").write_text("{}")
    result = cli("setup", "--prune-partials", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    removed = {p["path"].rsplit("/", 1)[1] for p in json.loads(result.stdout)["data"]["removed"]}
    assert removed == {f"{stray}.part", f"{stray}.state.json"}
    assert (partial / f"{needed}.part").exists()
    assert scaled.hub.log == []


def test_offline_mode_fails_clearly_when_files_are_missing(cli, scaled: Scaled) -> None:
    result = cli("setup", env=scaled.env(HF_HUB_OFFLINE="1"))
    assert result.returncode == 1
    assert "HF_HUB_OFFLINE is set and 3 file(s) are missing" in result.stderr
    assert "fix:" in result.stderr
    assert scaled.hub.log == []


def test_offline_mode_is_fine_when_everything_is_present(cli, scaled: Scaled) -> None:
    assert cli("setup", env=scaled.env()).returncode == 0
    result = cli("setup", env=scaled.env(HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr


def test_corrupt_file_is_reported_and_replaced_only_with_repair(cli, scaled: Scaled) -> None:
    assert cli("setup", env=scaled.env()).returncode == 0
    dest = scaled.placed(DESTS["lora"])
    corrupt = bytearray(dest.read_bytes())
    corrupt[-10] ^= 0xFF
    dest.write_bytes(bytes(corrupt))
    served = scaled.hub.served.bytes
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 1
    lora = next(f for f in json.loads(result.stdout)["data"]["files"] if f["id"] == "lora")
    assert lora["action"] == "corrupt" and lora["state"] == "hash_mismatch"
    assert "setup --repair" in result.stderr
    assert dest.read_bytes() == bytes(corrupt) and scaled.hub.served.bytes == served  # untouched
    repaired = cli("setup", "--repair", env=scaled.env())
    assert repaired.returncode == 0, repaired.stderr
    assert dest.read_bytes() == scaled.files["lora"].read_bytes()
    assert not list((scaled.models / ".fluxops-partial").glob("*.replaced"))


def test_doctors_bytes_to_download_counts_partials_and_placed_files(cli, scaled: Scaled, tmp_path) -> None:
    from fluxops.doctor.checks_models import scan_models
    from fluxops.models.manifest import load_manifest
    from fluxops.settings import load_settings

    manifest = load_manifest(scaled.manifest)
    settings = load_settings({"models_dir": scaled.models, "state_dir": tmp_path / "doctor-state"}, env={})

    def remaining_bytes() -> int:
        return scan_models(manifest, settings).bytes_to_download

    assert remaining_bytes() == scaled.total
    scaled.hub.faults.rate = 300_000
    kill_partway(scaled, 1_000_000, FLUXOPS_CONNECTIONS="1", FLUXOPS_JOBS="1")
    partway = remaining_bytes()
    assert scaled.total - scaled.hub.served.bytes <= partway < scaled.total
    scaled.hub.faults.rate = None
    assert cli("setup", env=scaled.env()).returncode == 0
    assert remaining_bytes() == 0
