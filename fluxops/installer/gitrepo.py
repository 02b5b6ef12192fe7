"""The ComfyUI checkout: a shallow clone of the pinned tag, verified against the pinned commit, and moving an
existing checkout to a new pin. Everything goes through the real `git`.

A fresh clone goes to a hidden folder beside the target and is renamed into place only once its commit is the
pinned one, so an interrupted or refused clone never leaves a half checkout where ComfyUI is expected.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from fluxops.errors import FluxopsError
from fluxops.installer.proc import OutputSink, run_quiet, run_streamed
from fluxops.models.manifest import ComfyPin

LOCK_NAME = "fluxops-lock.json"


def _distro_ids(os_release: Path) -> set[str]:
    try:
        text = os_release.read_text(encoding="utf-8")
    except OSError:
        return set()
    ids: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids.update(value.strip().strip('"').split())
    return ids


def git_install_command(platform: str = sys.platform, os_release: Path = Path("/etc/os-release")) -> str:
    """How to install git on this platform."""
    if platform == "darwin":
        return "xcode-select --install (or: brew install git)"
    if platform == "win32":
        return "winget install --id Git.Git -e"
    ids = _distro_ids(os_release)
    for names, command in ((("debian", "ubuntu"), "sudo apt-get install git"),
                           (("fedora", "rhel", "centos"), "sudo dnf install git"),
                           (("arch",), "sudo pacman -S git"), (("suse", "opensuse"), "sudo zypper install git"),
                           (("alpine",), "sudo apk add git")):
        if ids.intersection(names):
            return command
    return "install git with your system's package manager"


def find_git(env: Mapping[str, str]) -> str:
    git = shutil.which("git", path=env.get("PATH", os.defpath))
    if git is None:
        raise FluxopsError("install.git_missing", "git is not installed (ComfyUI is installed as a git checkout)",
                           hint=f"install it: {git_install_command()}, then run the command again")
    return git


def git_env(env: Mapping[str, str]) -> dict[str, str]:
    return {**env, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}  # no credential prompt; messages we can quote


def head(git: str, repo: Path, env: Mapping[str, str]) -> str | None:
    done = run_quiet([git, "-C", str(repo), "rev-parse", "--verify", "--quiet", "HEAD^{commit}"], git_env(env))
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def is_checkout(git: str, repo: Path, env: Mapping[str, str]) -> bool:
    done = run_quiet([git, "-C", str(repo), "rev-parse", "--show-toplevel"], git_env(env))
    return done.returncode == 0 and Path(done.stdout.strip()).resolve() == repo.resolve()


def local_changes(git: str, repo: Path, env: Mapping[str, str]) -> list[str]:
    """Tracked files that differ from the checkout (untracked files do not stop a checkout: git refuses by
    itself to overwrite one)."""
    done = run_quiet([git, "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], git_env(env))
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]


def _check(done_code: int, what: str, tail: str) -> None:
    if done_code != 0:
        raise FluxopsError("install.git_failed", f"{what} failed: {tail.strip() or f'exit status {done_code}'}")


def _mismatch(pin: ComfyPin, resolved: str | None) -> FluxopsError:
    return FluxopsError("install.pin_mismatch", f"tag {pin.tag} of {pin.url} resolves to {resolved or 'nothing'}, "
                        f"the manifest pins {pin.commit}: the tag was moved, or the manifest is wrong")


def clone_pinned(git: str, pin: ComfyPin, target: Path, env: Mapping[str, str],
                 on_output: OutputSink | None) -> None:
    """Clone the pinned tag into `target` (absent or an empty folder)."""
    staging = target.with_name(f".{target.name}.fluxops-clone")
    if staging.exists():  # what an interrupted clone left
        shutil.rmtree(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    clone = [git, "-c", "advice.detachedHead=false", "clone", "--depth", "1", "--branch", pin.tag, "--", pin.url]
    done = run_streamed([*clone, str(staging)], git_env(env), on_output, what="git was cloning ComfyUI")
    try:
        _check(done.returncode, f"git clone {pin.url} (tag {pin.tag})", done.last_lines)
        resolved = head(git, staging, env)
        if resolved != pin.commit:
            raise _mismatch(pin, resolved)
        exclude_own_files(staging)
        if target.is_dir():
            target.rmdir()  # empty (checked by the plan); a rename cannot replace it everywhere
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def move_to_pin(git: str, pin: ComfyPin, repo: Path, env: Mapping[str, str], on_output: OutputSink | None,
                force: bool) -> str | None:
    """Check out the pinned commit in an existing checkout; returns the stash that holds local changes
    (--force), or None. Refuses local changes without --force, and a tag that resolves elsewhere."""
    changes = local_changes(git, repo, env)
    if changes and not force:
        listed = ", ".join(changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
        raise FluxopsError("install.local_changes", f"{repo} has local changes ({listed})")
    genv = git_env(env)
    shallow = run_quiet([git, "-C", str(repo), "rev-parse", "--is-shallow-repository"], genv).stdout.strip()
    depth = ["--depth", "1"] if shallow == "true" else []  # never make a full history shallow
    done = run_streamed([git, "-C", str(repo), "fetch", *depth, "--no-tags", pin.url, f"refs/tags/{pin.tag}"],
                        genv, on_output, what="git was fetching the pinned tag")
    _check(done.returncode, f"git fetch {pin.url} (tag {pin.tag})", done.last_lines)
    peeled = run_quiet([git, "-C", str(repo), "rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}"], genv)
    resolved = peeled.stdout.strip() or None
    if resolved != pin.commit:
        raise _mismatch(pin, resolved)
    stash = None
    if changes:
        message = f"fluxops comfy install --force: local changes before moving to {pin.tag}"
        saved = run_quiet([git, "-C", str(repo), "stash", "push", "--message", message], genv)
        _check(saved.returncode, "git stash", saved.stderr or saved.stdout)
        stash = message
    moved = run_streamed([git, "-C", str(repo), "-c", "advice.detachedHead=false", "checkout", "--quiet",
                          "--detach", pin.commit], genv, on_output, what="git was checking out the pin")
    _check(moved.returncode, f"git checkout {pin.commit[:12]}", moved.last_lines)
    exclude_own_files(repo)
    return stash


def exclude_own_files(repo: Path) -> None:
    """Keep fluxops's lock file out of `git status` (ComfyUI's .gitignore already ignores venv/)."""
    exclude = repo / ".git" / "info" / "exclude"
    try:
        text = exclude.read_text(encoding="utf-8") if exclude.is_file() else ""
        if f"/{LOCK_NAME}" not in text.splitlines():
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + f"/{LOCK_NAME}\n",
                               encoding="utf-8")
    except OSError:
        pass  # a lock file that shows as untracked costs nothing
