"""Issue 14 item 1: `setup --prune-partials` takes setup's lock, so it never removes a running setup's partials."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers import run_fluxops, spawn_fluxops, stopping, wait_until
from tests.setup.conftest import Scaled, spawn
from tests.setup.test_setup_basic import assert_all_placed

pytestmark = pytest.mark.network


def _vae_only(scaled: Scaled, tmp_path: Path) -> Path:
    """Another manifest for the same models dir, that needs none of the files the first setup is fetching."""
    text = scaled.manifest.read_text()
    head, rest = text.split("[[file]]", 1)
    entries = ["[[file]]" + e for e in rest.split("[[file]]")]
    other = tmp_path / "vae-only.toml"
    other.write_text(head + "".join(e for e in entries if 'id = "vae"' in e))
    return other


def _lora_part(scaled: Scaled) -> Path:
    sha = hashlib.sha256(scaled.files["lora"].read_bytes()).hexdigest()
    return scaled.models / ".fluxops-partial" / f"{sha}.part"


def test_prune_with_no_wait_refuses_while_a_setup_runs(scaled: Scaled, tmp_path: Path) -> None:
    scaled.hub.faults.rate = 300_000  # slow enough to prune in the middle
    with stopping(spawn(scaled, FLUXOPS_JOBS="1", FLUXOPS_CONNECTIONS="1")) as setup:
        wait_until(lambda: scaled.hub.served.bytes > 100_000 and _lora_part(scaled).exists())
        pruned = run_fluxops("setup", "--prune-partials", "--no-wait", "--manifest", str(_vae_only(scaled, tmp_path)),
                             env=scaled.env())
        assert "Traceback" not in pruned.stderr
        assert pruned.returncode == 1, pruned.stderr
        assert "in use by fluxops setup" in pruned.stderr
        assert _lora_part(scaled).exists()  # the running setup's download is untouched
        scaled.hub.faults.rate = None
        _, stderr = setup.communicate(timeout=60)
    assert setup.returncode == 0, stderr
    assert_all_placed(scaled)


def test_prune_waits_for_the_running_setup_then_prunes(scaled: Scaled, tmp_path: Path) -> None:
    scaled.hub.faults.rate = 300_000
    with stopping(spawn(scaled, FLUXOPS_JOBS="1", FLUXOPS_CONNECTIONS="1")) as setup:
        wait_until(lambda: scaled.hub.served.bytes > 100_000 and _lora_part(scaled).exists())
        err = tmp_path / "prune.err"
        with stopping(spawn_fluxops("setup", "--prune-partials", "--manifest", str(_vae_only(scaled, tmp_path)),
                                    env=scaled.env(), stderr=err)) as prune:
            wait_until(lambda: "waiting for fluxops setup" in err.read_text())
            assert prune.poll() is None and _lora_part(scaled).exists()
            scaled.hub.faults.rate = None
            _, stderr = setup.communicate(timeout=60)
            prune.communicate(timeout=60)
    assert setup.returncode == 0, stderr
    assert prune.returncode == 0, err.read_text()
    assert_all_placed(scaled)
