"""Finding an existing ComfyUI when none is configured, in the order the places are tried."""

from __future__ import annotations

import json
from pathlib import Path

from fluxops.comfy.discover import discover
from tests.fakes.comfyui.install import make_comfyui_dir


def comfyui(path: Path) -> Path:
    return make_comfyui_dir(path, models={}, venv_python=False)


def test_the_current_directory_and_its_parents_come_first(tmp_path: Path) -> None:
    home = tmp_path / "home"
    comfyui(home / "ComfyUI")
    work = comfyui(tmp_path / "srv" / "ComfyUI")
    inside = work / "custom_nodes" / "some-node"
    inside.mkdir(parents=True)
    env = {"HOME": str(home)}
    assert discover(work, env, "linux").where == "the current directory"
    found = discover(inside, env, "linux")
    assert found is not None and found.path == work.resolve()
    assert found.where == "a parent of the current directory"
    assert found.describe() == f"found ComfyUI at {work.resolve()} (a parent of the current directory)"


def test_home_then_comfy_cli_then_desktop(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "elsewhere"
    cwd.mkdir()
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert discover(cwd, env, "linux") is None

    desktop_base = tmp_path / "Documents" / "ComfyUI"
    (desktop_base / "models").mkdir(parents=True)
    (desktop_base / ".venv").mkdir()
    desktop_config = tmp_path / "xdg" / "ComfyUI" / "config.json"
    desktop_config.parent.mkdir(parents=True)
    desktop_config.write_text(json.dumps({"basePath": str(desktop_base), "installState": "installed"}))
    found = discover(cwd, env, "linux")
    assert found is not None and found.path == desktop_base.resolve()
    assert found.where == f"ComfyUI Desktop's base path in {desktop_config}"

    comfyui(home / "comfy" / "ComfyUI")
    assert discover(cwd, env, "linux").where == "comfy-cli's default workspace"

    configured = comfyui(tmp_path / "big-disk" / "ComfyUI")
    config_ini = home / ".config" / "comfy-cli" / "config.ini"
    config_ini.parent.mkdir(parents=True)
    config_ini.write_text(f"[DEFAULT]\ndefault_workspace = {configured}\nenable_tracking = False\n")
    found = discover(cwd, env, "linux")
    assert found is not None and found.path == configured.resolve()
    assert found.where == f"comfy-cli's default workspace in {config_ini}"

    comfyui(home / "ComfyUI")
    assert discover(cwd, env, "linux").where == "~/ComfyUI"


def test_a_folder_with_only_a_main_py_is_not_comfyui(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print('hello')\n")
    assert discover(tmp_path, {"HOME": str(tmp_path / "home")}, "linux") is None


def test_unreadable_tool_configs_are_skipped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "comfy-cli").mkdir(parents=True)
    (home / ".config" / "comfy-cli" / "config.ini").write_text("no section header\n")
    (home / ".config" / "ComfyUI").mkdir(parents=True)
    (home / ".config" / "ComfyUI" / "config.json").write_text("{not json")
    assert discover(tmp_path, {"HOME": str(home)}, "linux") is None


def test_commands_say_where_they_found_comfyui(cli, isolated, tmp_path: Path) -> None:
    found = comfyui(Path(isolated["HOME"]) / "ComfyUI")
    shown = cli("config", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["data"]
    assert rows["comfyui_dir"] == {"value": str(found.resolve()), "source": "discovered"}
    assert rows["models_dir"]["value"] == str(found.resolve() / "models")
    assert f"note: using the ComfyUI found at {found.resolve()} (~/ComfyUI)" in shown.stderr
    verify = cli("verify")
    assert f"using the ComfyUI found at {found.resolve()}" in verify.stderr
