"""The Hugging Face token: present (offline), and with --online valid and able to read the gated sources.

The token is the one `fluxops setup` would use (`fluxops.hub.tokens.resolve_token`: HF_TOKEN,
HUGGING_FACE_HUB_TOKEN, HUGGINGFACE_TOKEN, a `.env`, then the stored login); the Hub is asked through
setup's seam (`fluxops.hub.client.Hub`), so doctor and setup agree on what a token can do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fluxops.doctor.checks_models import TO_DOWNLOAD
from fluxops.doctor.context import DoctorContext
from fluxops.doctor.result import CheckResult, Status, fail, ok, warn
from fluxops.errors import FluxopsError
from fluxops.hub.tokens import ResolvedToken, resolve_token
from fluxops.models.manifest import Manifest, Source

if TYPE_CHECKING:
    from fluxops.hub.client import Hub

TOKEN_PAGE = "https://huggingface.co/settings/tokens"


def find_token(env: Mapping[str, str], cwd: Path | None = None) -> ResolvedToken:
    return resolve_token(None, env, cwd or Path.cwd())


def _gated_only(manifest: Manifest, missing: set[str]) -> list[str]:
    """Missing files that only gated sources serve."""
    return [s.dest for s in manifest.files if s.id in missing and all(src.gated for src in s.sources)]


@dataclass(frozen=True)
class _Refused:
    """A gated source the token cannot read."""

    source: Source
    has_mirror: bool  # an ungated source serves the same file


def _gated_access(hub: Hub, manifest: Manifest | None) -> tuple[list[str], list[_Refused]]:
    details: list[str] = []
    refused: list[_Refused] = []
    for spec in manifest.files if manifest else ():
        has_mirror = any(not src.gated for src in spec.sources)
        for source in (s for s in spec.sources if s.gated):
            try:
                hub.auth_check(source)
                details.append(f"{source.repo}: accessible")
            except FluxopsError as exc:
                mirror = f"; {spec.dest} comes from an ungated mirror" if has_mirror else ""
                details.append(f"{source.repo}: {exc.message}{mirror}")
                refused.append(_Refused(source, has_mirror))
    return details, refused


def _online(ctx: DoctorContext, token: ResolvedToken, manifest: Manifest | None) -> CheckResult:
    from fluxops.hub.client import Hub

    hub = Hub(ctx.settings.hf_endpoint, token.value)
    facts: dict[str, object] = {"present": True, "source": token.source, "token": token.shown, "online": True}
    try:
        user = hub.whoami()
    except FluxopsError as exc:
        if exc.code == "hub.token_invalid":
            return fail("token", f"the token from {token.source} is not valid: {exc.message}",
                        f"create a new read token at {TOKEN_PAGE} and `export HF_TOKEN=...`", **facts)
        return warn("token", f"could not check the token: {exc.message}",
                    "check the network (or run doctor without --online)", **facts)
    facts["user"] = user
    details, refused = _gated_access(hub, manifest)
    facts["gated_access"] = details
    summary = f"token from {token.source} is valid (user {user})"
    if not refused:
        return ok("token", summary, details, **facts)
    worst = next((r for r in refused if not r.has_mirror), refused[0])
    page = worst.source.page
    if not worst.has_mirror:
        return fail("token", summary + f", but it cannot read {worst.source.repo}",
                    f"accept the licence at {page} with that account", details, **facts)
    return warn("token", summary + f"; {worst.source.repo} is gated for it (a mirror serves the file)",
                f"accept the licence at {page} to use the original", details, **facts)


def check_token(ctx: DoctorContext) -> CheckResult:
    token = find_token(ctx.env)
    manifest = ctx.manifest_or_none
    notes = list(token.warnings)
    if token.source == "HUGGINGFACE_TOKEN":
        notes.append("fluxops reads HUGGINGFACE_TOKEN, but huggingface_hub and the hf CLI do not")
    if not token.value:
        scan = ctx.models
        missing = {f.id for f in scan.files if f.state in TO_DOWNLOAD} if scan else set()
        needs = _gated_only(manifest, missing) if manifest else []
        if needs:
            return fail(
                "token",
                f"no Hugging Face token, and {', '.join(needs)} is only on gated repos",
                f"create a read token at {TOKEN_PAGE}, accept the licence, then `export HF_TOKEN=...`",
                present=False,
                source=None,
            )
        return ok(
            "token", "no Hugging Face token (none needed: every file has an ungated source)", present=False, source=None
        )
    facts = {"present": True, "source": token.source, "token": token.shown, "online": False}
    if ctx.options.online:
        result = _online(ctx, token, manifest)
    else:
        result = ok("token", f"a token is set (from {token.source}); run with --online to check it", **facts)
    if token.exposed is not None and result.status is Status.OK:  # a .env others can read
        return warn("token", f"{result.summary}; but {token.exposed}", token.exposed.fix,
                    [*result.details, *notes], **result.facts)
    return replace(result, details=(*result.details, *notes))
