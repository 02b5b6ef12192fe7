"""`fluxops setup` against the fake Hub over real loopback HTTP: the clean path and idempotence."""

from __future__ import annotations

import json

import pytest

from tests.setup.conftest import Scaled

pytestmark = pytest.mark.network


def test_clean_download_places_every_file_bit_exact(cli, scaled: Scaled) -> None:
    result = cli("setup", "--json", env=scaled.env())
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    assert {f["action"] for f in doc["data"]["files"]} == {"placed"}
    for file_id, dest in [("clip_l", "text_encoders/clip_l.safetensors"), ("vae", "vae/ae.safetensors"),
                          ("lora", "loras/FLUX.1-Turbo-Alpha.safetensors")]:
        assert scaled.placed(dest).read_bytes() == scaled.files[file_id].read_bytes()
    assert not list((scaled.models / ".fluxops-partial").glob("*.part"))
    assert scaled.hub.served.bytes == scaled.total
    # the CDN never saw the token or any Authorization header; no token was given here at all
    assert scaled.hub.cdn_auth_seen and not any(scaled.hub.cdn_auth_seen)
