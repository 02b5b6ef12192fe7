"""Remove what must not leave the machine from a doctor report: the Hugging Face token, GPU UUIDs and
serial numbers, the user name and the home path."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PATTERNS = (
    (re.compile(r"\bhf_[A-Za-z0-9]{8,}\b"), "hf_<redacted>"),
    (re.compile(r"\b(GPU|MIG)-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"), r"\1-<redacted>"),
)


def redact(text: str, secrets: Iterable[str] = (), home: str | None = None, user: str | None = None) -> str:
    """Known secrets (token, serials) first, then anything shaped like a token or GPU UUID, then the home
    path (-> ~) and the user name (-> <user>)."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    if home and home not in ("/", ""):
        text = text.replace(home.rstrip("/"), "~")
    if user and len(user) >= 2:
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(user)}(?![A-Za-z0-9])", "<user>", text)
    return text
