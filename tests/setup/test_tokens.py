"""Token resolution order, redaction and the .env rules (in-process: pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxops.hub.tokens import redact, resolve_token, scrub


def test_flag_wins_over_every_variable(tmp_path: Path, isolated: dict[str, str]) -> None:
    env = {"HF_TOKEN": "hf_env", "HUGGINGFACE_TOKEN": "hf_other"}
    assert resolve_token("hf_flag", env, tmp_path).source == "--token"


@pytest.mark.parametrize("name", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN"])
def test_each_variable_is_honoured_in_order(tmp_path: Path, isolated: dict[str, str], name: str) -> None:
    names = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN"]
    env = {n: f"hf_{n.lower()}" for n in names[names.index(name):]}
    token = resolve_token(None, env, tmp_path)
    assert (token.value, token.source) == (f"hf_{name.lower()}", name)


def test_dotenv_never_overrides_a_variable_already_set(tmp_path: Path, isolated: dict[str, str]) -> None:
    (tmp_path / ".env").write_text("HF_TOKEN=hf_fromdotenv\n")
    assert resolve_token(None, {"HUGGINGFACE_TOKEN": "hf_set"}, tmp_path).value == "hf_set"
    from_file = resolve_token(None, {}, tmp_path)
    assert (from_file.value, from_file.source) == ("hf_fromdotenv", ".env (HF_TOKEN)")


def test_stored_login_is_the_last_resort(tmp_path: Path, isolated: dict[str, str]) -> None:
    stored = Path(isolated["HF_HOME"]) / "token"
    stored.parent.mkdir(parents=True)
    stored.write_text("hf_storedLogin0000wxyz")
    # huggingface_hub computes its token path at import: ask in a fresh interpreter, like the CLI does
    import subprocess
    import sys

    code = ("from pathlib import Path; from fluxops.hub.tokens import resolve_token; "
            "t = resolve_token(None, {}, Path('.')); print(t.source, t.shown)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env={**__import__("os").environ,
                                            "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.strip() == "stored login hf_...wxyz"


def test_no_token_at_all(tmp_path: Path, isolated: dict[str, str]) -> None:
    token = resolve_token(None, {}, tmp_path)
    assert token.value is None and token.source == "none" and token.shown == "none"


def test_redaction_shows_at_most_prefix_and_last_four() -> None:
    assert redact("hf_abcdefghijklmnop1234") == "hf_...1234"
    assert redact("short") == "..."
    assert "secretvalue" not in repr(resolve_token("hf_secretvalue0000", {}, Path(".")))
    assert scrub("bad hf_secretvalue0000 here", "hf_secretvalue0000") == "bad hf_...0000 here"
