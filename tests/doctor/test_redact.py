"""Redaction of doctor reports."""

from __future__ import annotations

from fluxops.doctor.redact import redact


def test_known_secrets_patterns_home_and_user():
    text = (
        "HF_TOKEN=hf_AbCdEf0123456789xyz serial 1322021012345 uuid GPU-a7c3e9d1-0b2f-4e6a-8c5d-9f1e2d3c4b5a "
        "MIG-11111111-2222-3333-4444-555555555555 at /home/bob/ComfyUI, /tmp/pytest-of-bob/x, bobcat stays"
    )
    out = redact(text, secrets=["1322021012345"], home="/home/bob", user="bob")
    assert "hf_AbCdEf" not in out and "hf_<redacted>" in out
    assert "1322021012345" not in out and "a7c3e9d1" not in out and "55555555" not in out
    assert "GPU-<redacted>" in out and "MIG-<redacted>" in out
    assert "~/ComfyUI" in out and "/tmp/pytest-of-<user>/x" in out
    assert "bobcat stays" in out  # the user name only as a whole word


def test_a_token_of_any_shape_is_removed_when_known():
    assert "secret-value-42" not in redact("token: secret-value-42", secrets=["secret-value-42"])
