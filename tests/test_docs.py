"""The docs that are generated from the code stay in step with it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

CLI_DOC = REPO / "docs" / "cli.md"
REGENERATE = [sys.executable, "-m", "typer", "fluxops.cli", "utils", "docs", "--name", "fluxops",
              "--title", "fluxops command reference"]


def test_cli_reference_is_current() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    fresh = subprocess.run(REGENERATE, capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=True)
    assert fresh.stdout.strip() == CLI_DOC.read_text(encoding="utf-8").strip(), (
        "docs/cli.md is stale: regenerate it with\n  PYTHONPATH=. " + " ".join(["python", *REGENERATE[1:]])
        + " --output docs/cli.md")


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for command in ("comfy install", "setup", "verify", "doctor", "comfy start", "generate", "maintain", "config"):
        assert f"fluxops {command}" in readme, command
