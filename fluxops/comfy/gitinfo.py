"""What local git knows about a ComfyUI checkout: commit, branch, upstream, commits behind, local changes.

Offline by default: "behind" counts against the upstream ref as last fetched; `fetch=True` runs
`git fetch` first (bounded by a timeout).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

GIT_TIMEOUT = 10.0
FETCH_TIMEOUT = 60.0


@dataclass(frozen=True)
class GitInfo:
    is_repo: bool
    commit: str | None = None
    branch: str | None = None
    upstream: str | None = None
    behind: int | None = None
    ahead: int | None = None
    changed_files: list[str] = field(default_factory=list)
    fetched: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _git(repo: Path, *args: str, timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise FileNotFoundError("git")
    return subprocess.run([git, "-C", str(repo), *args], capture_output=True, text=True, timeout=timeout)


def git_info(repo: Path, fetch: bool = False) -> GitInfo:
    try:
        top = _git(repo, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return GitInfo(is_repo=False, error="not a git checkout")
        commit = _git(repo, "rev-parse", "HEAD").stdout.strip() or None
        branch = _git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip() or None
        up = _git(repo, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}")
        upstream = up.stdout.strip() if up.returncode == 0 else None
        fetched, error = False, None
        if fetch and upstream:
            remote = upstream.split("/", 1)[0]
            done = _git(repo, "fetch", "--quiet", remote, timeout=FETCH_TIMEOUT)
            fetched = done.returncode == 0
            if not fetched:
                error = f"git fetch failed: {done.stderr.strip()[:200]}"
        behind = ahead = None
        if upstream:
            counts = _git(repo, "rev-list", "--left-right", "--count", f"HEAD...{upstream}")
            if counts.returncode == 0 and len(counts.stdout.split()) == 2:
                ahead, behind = (int(n) for n in counts.stdout.split())
        status = _git(repo, "status", "--porcelain", "--untracked-files=no")
        changed = [line[3:] for line in status.stdout.splitlines() if line.strip()]
        return GitInfo(True, commit, branch, upstream, behind, ahead, changed, fetched, error)
    except FileNotFoundError:
        return GitInfo(is_repo=False, error="git is not installed")
    except subprocess.TimeoutExpired:
        return GitInfo(is_repo=False, error="git did not answer in time")
