"""Which Hugging Face token to use, where it came from, and how to show it without revealing it.

Order: --token, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HUGGINGFACE_TOKEN (a name many users put in .env, which
huggingface_hub ignores), a `.env` in the current directory (never overriding a variable already set), then
huggingface_hub's stored login. The token value never appears in output: `redact` shows at most `hf_...abcd`.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError

ENV_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN")
DOTENV_NAME = ".env"


@dataclass(frozen=True)
class ExposedFile:
    """A file holding the token that group or others can read."""

    path: Path
    mode: int

    @property
    def problem(self) -> str:
        return f"{self.path} holds a token and is readable by group or others (mode {self.mode:o})"

    @property
    def fix(self) -> str:
        return f"chmod 600 {self.path}"

    def __str__(self) -> str:
        return f"{self.problem}; run: {self.fix}"


@dataclass(frozen=True)
class ResolvedToken:
    value: str | None = field(repr=False)
    source: str  # "--token", an env var name, ".env (HF_TOKEN)", "stored login", or "none"
    exposed: ExposedFile | None = None  # the .env it came from, when others can read it

    @property
    def warnings(self) -> tuple[str, ...]:
        return (str(self.exposed),) if self.exposed is not None else ()

    @property
    def shown(self) -> str:
        return redact(self.value)

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "token": self.shown}


def redact(token: str | None) -> str:
    """`hf_...abcd`: enough to tell tokens apart, never enough to use one."""
    if not token:
        return "none"
    prefix = "hf_" if token.startswith("hf_") else ""
    tail = token[-4:] if len(token) >= 12 else ""
    return f"{prefix}...{tail}"


def scrub(text: str, token: str | None) -> str:
    """Remove the token from a message that came from elsewhere (an exception, a server)."""
    return text.replace(token, redact(token)) if token and len(token) >= 4 else text


def scrub_error(exc: FluxopsError, token: str | None) -> FluxopsError:
    """The same error with the token removed from its message and hint."""
    if not token or (token not in exc.message and token not in (exc.hint or "")):
        return exc
    return FluxopsError(exc.code, scrub(exc.message, token), hint=scrub(exc.hint, token) if exc.hint else None,
                        exit_code=exc.exit_code)


def scrub_data(data: Any, token: str | None) -> Any:
    """A JSON-able document with the token removed from every string in it (the --json report)."""
    if isinstance(data, str):
        return scrub(data, token)
    if isinstance(data, dict):
        return {key: scrub_data(value, token) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [scrub_data(value, token) for value in data]
    return data


def _exposed(path: Path) -> ExposedFile | None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return ExposedFile(path, stat.S_IMODE(mode)) if mode & (stat.S_IRWXG | stat.S_IRWXO) else None


def _from_dotenv(cwd: Path) -> ResolvedToken | None:
    path = cwd / DOTENV_NAME
    if not path.is_file():
        return None
    from dotenv import dotenv_values  # python-dotenv parses quoting, export and comments like the shells do

    values = dotenv_values(path)
    for name in ENV_NAMES:
        value = (values.get(name) or "").strip()
        if value:
            return ResolvedToken(value, f".env ({name})", _exposed(path))
    return None


def _stored_login() -> str | None:
    # Called only once every variable above is unset, so get_token() falls through to the stored login.
    from huggingface_hub import get_token

    try:
        return get_token()
    except OSError:
        return None


def resolve_token(flag: str | None, env: Mapping[str, str], cwd: Path) -> ResolvedToken:
    if flag and flag.strip():
        return ResolvedToken(flag.strip(), "--token")
    for name in ENV_NAMES:
        value = env.get(name, "").strip()
        if value:
            return ResolvedToken(value, name)
    from_file = _from_dotenv(cwd)
    if from_file is not None:
        return from_file
    stored = _stored_login()
    if stored:
        return ResolvedToken(stored, "stored login")
    return ResolvedToken(None, "none")
