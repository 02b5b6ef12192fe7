"""Issue 14 item 7: inputs that crashed with a traceback end in one clear line and exit 2 (input) or 1 (machine).

Each case is recreated on disk and run through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fakes.models import bad_symlink
from tests.setup.conftest import Scaled
from tests.setup.test_setup_basic import assert_all_placed

pytestmark = pytest.mark.network


def assert_one_clear_line(result: subprocess.CompletedProcess[str], exit_code: int, *words: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == exit_code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def _sha(scaled: Scaled, file_id: str) -> str:
    return hashlib.sha256(scaled.files[file_id].read_bytes()).hexdigest()


# -- models folders ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [("verify",), ("setup", "--dry-run")])
def test_dangling_symlink_in_any_models_folder(cli, scaled: Scaled, command: tuple[str, ...]) -> None:
    for folder in ("vae", "loras", "text_encoders", "checkpoints", "unet"):
        bad_symlink(scaled.models / folder, "dangling", "gone.safetensors")
    (scaled.models / "dangling-folder").symlink_to(scaled.models / "no-such-folder")
    (scaled.models / "clip").symlink_to(scaled.models / "no-such-clip-folder")  # an alias folder, dangling
    result = cli(*command, env=scaled.env())
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr  # verify: missing files (1); the dry run: a plan (0)


@pytest.mark.parametrize("command", [("verify",), ("setup", "--dry-run")])
def test_self_referencing_symlink_as_a_type_folder(cli, scaled: Scaled, command: tuple[str, ...]) -> None:
    (scaled.models / "vae").symlink_to(scaled.models / "vae")
    (scaled.models / "loras").mkdir()
    (scaled.models / "loras" / "self").symlink_to(scaled.models / "loras" / "self")
    result = cli(*command, env=scaled.env())
    if command[0] == "verify":
        assert "Traceback" not in result.stderr and result.returncode == 1, result.stderr
    else:
        assert_one_clear_line(result, 1, str(scaled.models / "vae"))


def test_self_referencing_type_folder_stops_setup_with_one_line(cli, scaled: Scaled) -> None:
    (scaled.models / "vae").symlink_to(scaled.models / "vae")
    result = cli("setup", env=scaled.env())
    assert_one_clear_line(result, 1, str(scaled.models / "vae"))


# -- the config file -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [("config",), ("verify",), ("setup", "--dry-run"), ("doctor",),
                                     ("comfy", "status"), ("generate", "--prompt", "x")])
def test_non_utf8_config_file(cli, scaled: Scaled, tmp_path: Path, command: tuple[str, ...]) -> None:
    config = tmp_path / "fluxops.toml"
    config.write_bytes(b'models_dir = "/srv/mod\xe8les"\n')  # latin-1, as an old editor saves it
    result = cli(*command, env=scaled.env(FLUXOPS_CONFIG=str(config)))
    assert_one_clear_line(result, 2, str(config), "UTF-8")


# -- --models-dir -------------------------------------------------------------------------------------------
def _loop(tmp_path: Path) -> Path:
    a, b = tmp_path / "loop-a", tmp_path / "loop-b"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file" / "models"


@pytest.mark.parametrize("make", [_loop, _under_a_file], ids=["symlink-loop", "under-a-file"])
@pytest.mark.parametrize("command", [("verify",), ("setup",), ("setup", "--dry-run"), ("setup", "--prune-partials")])
def test_models_dir_that_cannot_be_a_folder(cli, scaled: Scaled, tmp_path: Path, make, command) -> None:
    models = make(tmp_path)
    result = cli(*command, "--models-dir", str(models), env=scaled.env())
    assert_one_clear_line(result, 2, str(models))


def test_models_dir_that_cannot_be_created(cli, scaled: Scaled) -> None:
    models = Path("/proc/self/fdinfo/models")  # no one can make a folder in /proc
    result = cli("setup", "--models-dir", str(models), env=scaled.env())
    assert_one_clear_line(result, 2, str(models))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
@pytest.mark.parametrize("command", [("verify",), ("setup",), ("setup", "--dry-run")])
def test_models_dir_behind_a_folder_without_permission(cli, scaled: Scaled, tmp_path: Path, command) -> None:
    locked = tmp_path / "locked"
    (locked / "models").mkdir(parents=True)
    locked.chmod(0)
    try:
        result = cli(*command, "--models-dir", str(locked / "models"), env=scaled.env())
    finally:
        locked.chmod(0o755)
    assert_one_clear_line(result, 2, str(locked / "models"))


# -- partial downloads that lie ----------------------------------------------------------------------------
def _state(scaled: Scaled, file_id: str) -> Path:
    return scaled.models / ".fluxops-partial" / f"{_sha(scaled, file_id)}.state.json"


def _part(scaled: Scaled, file_id: str) -> Path:
    return scaled.models / ".fluxops-partial" / f"{_sha(scaled, file_id)}.part"


def _huge_number(scaled: Scaled) -> None:
    size = scaled.files["lora"].stat().st_size
    _part(scaled, "lora").write_bytes(b"\0" * size)
    _state(scaled, "lora").write_text(json.dumps({"version": 1, "size": size, "boot_id": None})[:-1]
                                      + ', "synced": [[0, 1e999]], "written": [[0, 1e999]]}')


def _huge_int(scaled: Scaled) -> None:
    size = scaled.files["lora"].stat().st_size
    _part(scaled, "lora").write_bytes(b"\0" * size)
    _state(scaled, "lora").write_text(json.dumps({"version": 1, "size": size, "boot_id": None,
                                                  "synced": [[0, 10 ** 30]], "written": [[0, 10 ** 30]]}))


def _state_is_a_folder(scaled: Scaled) -> None:
    _part(scaled, "lora").write_bytes(b"\0" * 1000)
    _state(scaled, "lora").mkdir()
    (_state(scaled, "lora") / "inside").write_text("x")


def _part_is_a_folder(scaled: Scaled) -> None:
    _part(scaled, "lora").mkdir()
    (_part(scaled, "lora") / "inside").write_text("x")


@pytest.mark.parametrize("make", [_huge_number, _huge_int, _state_is_a_folder, _part_is_a_folder],
                         ids=["state-huge-float", "state-huge-int", "state-is-a-folder", "part-is-a-folder"])
def test_broken_partial_is_discarded_and_the_file_fetched_again(cli, scaled: Scaled, make) -> None:
    (scaled.models / ".fluxops-partial").mkdir()
    make(scaled)
    dry = cli("setup", "--dry-run", env=scaled.env())
    assert "Traceback" not in dry.stderr and dry.returncode == 0, dry.stderr
    result = cli("setup", env=scaled.env())
    assert "Traceback" not in result.stderr and result.returncode == 0, result.stderr
    assert_all_placed(scaled)
    assert not _part(scaled, "lora").exists() and not _state(scaled, "lora").exists()
    again = cli("setup", env=scaled.env())  # and it stays healed
    assert again.returncode == 0, again.stderr


# -- the manifest ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ['ae\\u0000.safetensors', 'ae\\n.safetensors', "a" * 250 + ".safetensors"],
                         ids=["nul", "newline", "over-255-bytes"])
@pytest.mark.parametrize("command", [("verify",), ("setup",), ("setup", "--dry-run")])
def test_manifest_filename_no_file_system_takes(cli, scaled: Scaled, name: str, command) -> None:
    text = scaled.manifest.read_text()
    scaled.manifest.write_text(text.replace('filename = "ae.safetensors"', f'filename = "{name}"'))
    result = cli(*command, env=scaled.env())
    assert_one_clear_line(result, 2, "filename")


@pytest.mark.parametrize("command", [("setup",), ("setup", "--dry-run")])
def test_manifest_entries_with_one_sha256_and_two_destinations(cli, scaled: Scaled, command) -> None:
    text = scaled.manifest.read_text()
    vae = text[text.index('[[file]]\nid = "vae"'):text.index('[[file]]\nid = "lora"')]
    scaled.manifest.write_text(text + "\n" + vae.replace('id = "vae"', 'id = "vae_copy"')
                               .replace('folder = "vae"', 'folder = "checkpoints"'))
    result = cli(*command, env=scaled.env())
    assert_one_clear_line(result, 2, "sha256", "vae")
    assert not list(scaled.models.rglob("*.part"))


# -- settings -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["huggingface.co", "ftp://mirror.example", "http://", "http://[::1"],
                         ids=["no-scheme", "ftp", "no-host", "bad-ipv6"])
@pytest.mark.parametrize("command", [("setup",), ("config",)])
def test_hf_endpoint_that_is_not_a_url(cli, scaled: Scaled, endpoint: str, command) -> None:
    result = cli(*command, env=scaled.env(HF_ENDPOINT=endpoint))
    assert_one_clear_line(result, 2, "HF_ENDPOINT")


@pytest.mark.parametrize("size", ["1", "4096"])
def test_segment_size_below_the_floor(cli, scaled: Scaled, size: str) -> None:
    result = cli("setup", env=scaled.env(FLUXOPS_SEGMENT_SIZE=size))
    assert_one_clear_line(result, 2, "FLUXOPS_SEGMENT_SIZE")
