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


def _options_by_name() -> dict[str, list[tuple[str, tuple]]]:
    """Every option of every command: its name -> [(command path, (help, type, min, max)), ...]."""
    from typer.core import TyperOption

    found: dict[str, list[tuple[str, tuple]]] = {}

    def walk(cmd, prefix: str) -> None:
        for param in cmd.params:
            if isinstance(param, TyperOption):
                kind = param.type_descriptor.annotation
                definition = (param.help, str(kind), getattr(param, "min", None), getattr(param, "max", None))
                for name in param.opts:
                    found.setdefault(name, []).append((prefix, definition))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{prefix} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def test_a_shared_option_is_the_same_option_everywhere() -> None:
    """--port, --host, --comfyui-python ... mean one thing, with one help text and one validation."""
    options = _options_by_name()
    for name in ("--port", "--host", "--comfyui-python", "--comfyui-dir", "--models-dir", "--manifest",
                 "--listen", "--comfy-arg"):
        definitions = {definition for _command, definition in options[name]}
        assert len(definitions) == 1, (name, options[name])
    assert len(options["--port"]) >= 6  # doctor, generate and the four comfy subcommands
    (help_text, _kind, low, high), = {definition for _command, definition in options["--port"]}
    assert (low, high) == (1, 65535) and "FLUXOPS_PORT" in help_text


def test_a_port_out_of_range_is_refused_alike_by_every_command() -> None:
    runner = CliRunner()
    for port in ("0", "65536"):
        errors = set()
        for command in (["doctor"], ["generate"], ["comfy", "start"], ["comfy", "status"], ["comfy", "stop"]):
            result = runner.invoke(app, [*command, "--port", port], terminal_width=200)
            assert result.exit_code == 2, (command, result.output)
            errors.add(next(line.strip("│ ") for line in result.output.splitlines()
                            if "Invalid value" in line or line.startswith("error:")))
        assert len(errors) == 1 and "'--port'" in errors.pop(), port
