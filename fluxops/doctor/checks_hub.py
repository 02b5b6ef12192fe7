"""The Hugging Face token: present (offline), and with --online valid and able to read the gated sources."""

from __future__ import annotations

from dataclasses import dataclass

from fluxops.doctor.context import DoctorContext
from fluxops.doctor.result import CheckResult, fail, ok, warn
from fluxops.manifest import Manifest

TOKEN_PAGE = "https://huggingface.co/settings/tokens"


@dataclass(frozen=True)
class TokenInfo:
    value: str | None
    source: str | None  # "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "stored login"


def find_token(env: dict[str, str] | object) -> TokenInfo:
    """The token huggingface_hub will use, and where it comes from (its own lookup order)."""
    from huggingface_hub import get_token

    value = get_token()
    if not value:
        return TokenInfo(None, None)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if getattr(env, "get", lambda _k: None)(name) == value:
            return TokenInfo(value, name)
    return TokenInfo(value, "stored login (`hf auth login`)")


def _gated_only(manifest: Manifest, missing: set[str]) -> list[str]:
    """Missing files that only gated sources serve."""
    return [s.dest for s in manifest.files if s.id in missing and all(src.gated for src in s.sources)]


def _online(ctx: DoctorContext, token: TokenInfo, manifest: Manifest | None) -> CheckResult:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    api = HfApi(endpoint=ctx.settings.hf_endpoint)
    facts: dict[str, object] = {"present": True, "source": token.source, "online": True}
    try:
        user = api.whoami(token=token.value)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return fail(
                "token",
                f"the token from {token.source} is not valid (the Hub answered 401)",
                f"create a new read token at {TOKEN_PAGE} and `export HF_TOKEN=...`",
                **facts,
            )
        return warn("token", f"could not check the token: the Hub answered {status}", "try again later", **facts)
    except Exception as exc:
        return warn(
            "token",
            f"could not reach {ctx.settings.hf_endpoint}: {exc.__class__.__name__}",
            "check the network (or run doctor without --online)",
            **facts,
        )
    name = user.get("name") if isinstance(user, dict) else None
    facts["user"] = name
    details, blocked = [], []
    gated = sorted(
        {
            (src.repo, spec.dest, any(not s.gated for s in spec.sources))
            for spec in (manifest.files if manifest else ())
            for src in spec.sources
            if src.gated
        }
    )
    for repo, dest, has_mirror in gated:
        try:
            api.auth_check(repo, token=token.value)
            details.append(f"{repo}: accessible")
        except (GatedRepoError, RepositoryNotFoundError):
            details.append(
                f"{repo}: no access (licence not accepted)"
                + (f", the ungated mirror is used for {dest}" if has_mirror else "")
            )
            blocked.append((repo, has_mirror))
        except Exception as exc:
            details.append(f"{repo}: could not check ({exc.__class__.__name__})")
    facts["gated_access"] = details
    summary = f"token from {token.source} is valid (user {name})"
    if any(not mirror for _repo, mirror in blocked):
        repo = next(r for r, mirror in blocked if not mirror)
        return fail(
            "token",
            summary + f", but it cannot read {repo}",
            f"accept the licence at https://huggingface.co/{repo} with that account",
            details,
            **facts,
        )
    if blocked:
        repo = blocked[0][0]
        return warn(
            "token",
            summary + f"; {repo} is gated for it (a mirror serves the file)",
            f"accept the licence at https://huggingface.co/{repo} to use the original",
            details,
            **facts,
        )
    return ok("token", summary, details, **facts)


def check_token(ctx: DoctorContext) -> CheckResult:
    token = find_token(ctx.env)
    manifest = ctx.manifest if hasattr(ctx.manifest, "files") else None
    wrong_name = not token.value and bool(ctx.env.get("HUGGINGFACE_TOKEN"))
    if wrong_name:
        return warn(
            "token",
            "HUGGINGFACE_TOKEN is set, but huggingface_hub does not read that name",
            'export HF_TOKEN="$HUGGINGFACE_TOKEN"',
            present=False,
            source=None,
        )
    if not token.value:
        scan = ctx.models
        missing = {f.id for f in scan.files if f.state in ("missing", "wrong_size")} if scan else set()
        needs = _gated_only(manifest, missing) if manifest else []  # type: ignore[arg-type]
        if needs:
            return fail(
                "token",
                f"no Hugging Face token, and {', '.join(needs)} is only on gated repos",
                f"create a read token at {TOKEN_PAGE}, accept the licence, then `export HF_TOKEN=...`",
                present=False,
                source=None,
            )
        return ok(
            "token",
            "no Hugging Face token (none needed: every file has an ungated source)",
            present=False,
            source=None,
        )
    if ctx.options.online:
        return _online(ctx, token, manifest)  # type: ignore[arg-type]
    return ok(
        "token",
        f"a token is set (from {token.source}); run with --online to check it",
        present=True,
        source=token.source,
        online=False,
    )
