"""The command line as a whole: help for every command, version, usage errors."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from fluxops.cli import app


def _command_paths() -> list[list[str]]:
    info = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd, prefix: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(info, [])
    return paths


def test_help_for_root_and_every_command() -> None:
    runner = CliRunner()
    root = runner.invoke(app, ["--help"])
    assert root.exit_code == 0 and "verify" in root.output
    paths = _command_paths()
    assert ["verify"] in paths and ["config"] in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_version(cli) -> None:
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("fluxops ")


def test_unknown_option_is_usage_error(cli) -> None:
    proc = cli("verify", "--no-such-flag")
    assert proc.returncode == 2
