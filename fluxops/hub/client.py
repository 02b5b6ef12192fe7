"""The seam to the Hugging Face Hub, built on huggingface_hub: URLs, file metadata, auth checks, headers.

The endpoint is always passed explicitly (huggingface_hub reads HF_ENDPOINT once, at import). The token is
only ever attached to requests whose origin is the Hub endpoint's: a redirect to a CDN host gets no token.
Every huggingface_hub exception is mapped to a FluxopsError by one table (`ERROR_TABLE`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from fluxops.errors import FluxopsError
from fluxops.hub.tokens import scrub
from fluxops.models.manifest import Source

METADATA_TIMEOUT = 20.0
METADATA_ATTEMPTS = 3
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RemoteFile:
    """What the Hub says about one source file, pinned to the commit it resolved to."""

    source: Source
    url: str  # the resolve URL at the pinned commit (on the Hub: the token may go there)
    commit: str | None
    sha256: str | None  # the LFS/Xet etag; None when the Hub gave a non-sha256 etag
    size: int | None
    location: str  # where the bytes are served from: a CDN URL after a redirect, else `url`


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


# exception class name -> (code, message). Checked in order: GatedRepoError subclasses RepositoryNotFoundError.
ERROR_TABLE: tuple[tuple[str, str, str], ...] = (
    ("GatedRepoError", "hub.gated", "{repo} is gated: {why}"),
    ("RepositoryNotFoundError", "hub.repo_not_found", "{repo}: repository not found (or private)"),
    ("RevisionNotFoundError", "hub.revision_not_found", "{repo}: revision {revision!r} not found"),
    ("RemoteEntryNotFoundError", "hub.entry_not_found", "{repo}: no file {path!r} at revision {revision!r}"),
    ("OfflineModeIsEnabled", "hub.offline", "HF_HUB_OFFLINE is set: the Hub is not contacted"),
)


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def map_error(exc: BaseException, source: Source | None, token: str | None) -> FluxopsError:
    """One FluxopsError (code, message, hint) for any failure talking to the Hub."""
    import httpx2
    from huggingface_hub import errors

    fields: dict[str, Any] = {"repo": source.repo if source else "the Hub",
                              "revision": source.revision if source else "",
                              "path": source.path if source else ""}
    server_text = str(getattr(exc, "server_message", "") or "")
    if _status(exc) == 401 and "Invalid credentials" in (server_text + str(exc)):
        return FluxopsError("hub.token_invalid", "the Hub refused the token (invalid or revoked)")
    for class_name, code, template in ERROR_TABLE:
        cls = getattr(errors, class_name)
        if isinstance(exc, cls):
            hint = None
            if code == "hub.gated" and source is not None:
                why = ("a token is needed" if token is None or _status(exc) == 401
                       else "this token's account has not accepted the licence")
                fields["why"] = why
                hint = f"accept the licence at {source.page}, then set HF_TOKEN"
            return FluxopsError(code, scrub(template.format(**fields), token), hint=hint)
    if isinstance(exc, errors.HfHubHTTPError):
        return FluxopsError("hub.http_error", scrub(f"{fields['repo']}: HTTP {_status(exc)} from the Hub "
                                                    f"({server_text or str(exc).splitlines()[0]})", token))
    if isinstance(exc, (httpx2.TransportError, OSError)):
        return FluxopsError("hub.unreachable", scrub(f"cannot reach the Hub: {exc.__class__.__name__}: {exc}",
                                                     token))
    raise exc


class Hub:
    """Hub calls for one endpoint and one (optional) token."""

    def __init__(self, endpoint: str, token: str | None):
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self._origin = origin(self.endpoint)

    def is_hub_url(self, url: str) -> bool:
        return origin(url) == self._origin

    def auth_headers(self, url: str) -> dict[str, str]:
        """Authorization for the Hub's own origin only; nothing for a CDN or any other host."""
        if not self.token or not self.is_hub_url(url):
            return {}
        from huggingface_hub.utils import build_hf_headers

        return {"authorization": build_hf_headers(token=self.token)["authorization"]}

    def file_url(self, source: Source, revision: str | None = None) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(source.repo, source.path, revision=revision or source.revision, endpoint=self.endpoint)

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token or False)

    def whoami(self) -> str:
        """The account name behind the token; raises hub.token_invalid for a bad one."""
        try:
            info = self._api().whoami(token=self.token)
        except Exception as exc:  # mapped below; unknown exceptions are re-raised by map_error
            err = map_error(exc, None, self.token)
            if err.code == "hub.http_error" and _status(exc) == 401:
                raise FluxopsError("hub.token_invalid", "the Hub refused the token (invalid or revoked)") from exc
            raise err from exc
        return str(info.get("name", "?"))

    def auth_check(self, source: Source) -> None:
        """Raises hub.gated when the licence has not been accepted (or no token was given)."""
        try:
            self._api().auth_check(source.repo, token=self.token or False)
        except Exception as exc:
            raise map_error(exc, source, self.token) from exc

    def _head(self, url: str, source: Source) -> Any:
        """get_hf_file_metadata with a short retry of our own: huggingface_hub's backoff would spend
        ~23 s (and log each try) before saying a dead endpoint is dead."""
        from huggingface_hub import get_hf_file_metadata

        for attempt in range(1, METADATA_ATTEMPTS + 1):
            try:
                return get_hf_file_metadata(url, token=self.token or False, timeout=METADATA_TIMEOUT,
                                            endpoint=self.endpoint, retry_on_errors=False)
            except Exception as exc:
                err = map_error(exc, source, self.token)
                transient = err.code == "hub.unreachable" or _status(exc) in (429, 500, 502, 503, 504)
                if not transient or attempt == METADATA_ATTEMPTS:
                    raise err from exc
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    def metadata(self, source: Source, revision: str | None = None) -> RemoteFile:
        url = self.file_url(source, revision)
        meta = self._head(url, source)
        commit = meta.commit_hash
        pinned = self.file_url(source, commit) if commit else url
        etag = (meta.etag or "").lower()
        location = urljoin(url, meta.location) if meta.location else pinned
        if self.is_hub_url(location):
            location = pinned
        return RemoteFile(source=source, url=pinned, commit=commit,
                          sha256=etag if _SHA256.match(etag) else None, size=meta.size, location=location)
