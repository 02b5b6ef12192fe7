"""Fixtures for `fluxops comfy install`: a local ComfyUI git repository, local wheel indexes on 127.0.0.1, and
a pip environment that sees nothing but them.

pip's settings on a developer's or CI's machine (a global pip.conf with extra indexes, find-links, a
constraints file) would leak into the installs under test; each is overridden with an environment variable
(pip ignores an empty one, so they point at an empty folder, an empty file and the local PyPI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.comfyui_repo import ComfyRepo, make_comfy_repo
from tests.fakes.pyindex import IndexServer, build_indexes


@pytest.fixture(scope="session")
def pyindex_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_indexes(tmp_path_factory.mktemp("pyindex"))


@pytest.fixture(scope="session")
def comfy_repo(tmp_path_factory: pytest.TempPathFactory) -> ComfyRepo:
    return make_comfy_repo(tmp_path_factory.mktemp("upstream") / "ComfyUI.git")


@pytest.fixture
def index_server(pyindex_tree: Path) -> Iterator[IndexServer]:
    with IndexServer(pyindex_tree) as server:
        yield server


def pip_env(server: IndexServer, scratch: Path) -> dict[str, str]:
    """The PIP_* variables that make pip use only the local indexes."""
    empty = scratch / "pip-empty"
    empty.mkdir(parents=True, exist_ok=True)
    (scratch / "pip-no-constraints.txt").write_text("", encoding="utf-8")
    return {
        "PIP_INDEX_URL": f"{server.pypi}/",
        "PIP_EXTRA_INDEX_URL": f"{server.pypi}/",
        "PIP_FIND_LINKS": str(empty),
        "PIP_CONSTRAINT": str(scratch / "pip-no-constraints.txt"),
        "PIP_CACHE_DIR": str(scratch / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_DEFAULT_TIMEOUT": "20",
    }


def without_pip_settings(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("PIP_")}
