"""A local git repository shaped like ComfyUI's, with release tags, for `fluxops comfy install` to clone.

Its tree has what fluxops looks at in a ComfyUI checkout: main.py (which runs the fake ComfyUI server of
tests/fakes/comfyui, so `fluxops comfy start` works on an install), comfyui_version.py, folder_paths.py, the
comfy/ package, requirements.txt naming the packages of the local "PyPI" (tests/fakes/pyindex.py), a
.gitignore with ComfyUI's entries (venv/, /models/, /custom_nodes/ ...) and the placeholder files ComfyUI
tracks inside models/ and custom_nodes/. Tags: v0.0.1 (annotated) and v0.0.2 (lightweight), one commit each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.comfyui.install import MAIN_PY, REPO
from tests.fakes.pyindex import REQUIREMENTS_TXT

GITIGNORE = """__pycache__/
*.py[cod]
/output/
/input/
/models/
/temp/
/custom_nodes/
!custom_nodes/example_node.py.example
extra_model_paths.yaml
venv/
.venv/
/user/
*.log
"""
PLACEHOLDERS = ("models/checkpoints/put_checkpoints_here", "models/diffusion_models/put_diffusion_model_files_here",
                "models/text_encoders/put_text_encoder_files_here", "models/vae/put_vae_here",
                "models/loras/put_loras_here", "custom_nodes/example_node.py.example")


@dataclass(frozen=True)
class ComfyRepo:
    path: Path
    commits: dict[str, str]  # tag -> commit

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def copy(self, dest: Path) -> ComfyRepo:
        shutil.copytree(self.path, dest, symlinks=True)
        return ComfyRepo(dest, dict(self.commits))


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def _write_tree(root: Path, version: str) -> None:
    paths = [str(REPO), *sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})]
    files = {
        "main.py": MAIN_PY.format(paths=paths),
        "comfyui_version.py": f'__version__ = "{version}"\n',
        "folder_paths.py": "# ComfyUI's folder_paths (a placeholder in the test repository)\n",
        "comfy/__init__.py": "",
        "requirements.txt": REQUIREMENTS_TXT,
        ".gitignore": GITIGNORE,
        **dict.fromkeys(PLACEHOLDERS, ""),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def make_comfy_repo(path: Path) -> ComfyRepo:
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch", "master")
    commits = {}
    for tag, annotated in (("v0.0.1", True), ("v0.0.2", False)):
        _write_tree(path, tag[1:])
        git(path, "add", "--all", "--force", ".")
        git(path, "commit", "--quiet", "--message", f"ComfyUI version {tag[1:]}")
        git(path, "tag", *(["--annotate", "--message", tag] if annotated else []), tag)
        commits[tag] = git(path, "rev-parse", "HEAD")
    return ComfyRepo(path, commits)
