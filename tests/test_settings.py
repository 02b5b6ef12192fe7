"""Settings: flags > environment > config file > defaults, each value with its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxops.errors import FluxopsError
from fluxops.settings import load_settings, packaged_manifest


def test_defaults(isolated, tmp_path: Path) -> None:
    s = load_settings({}, env={})
    assert s.models_dir is None and s.comfyui_dir is None
    assert s.manifest == packaged_manifest()
    assert (s.host, s.port, s.parallel_files) == ("127.0.0.1", 8188, 3)
    assert s.sources["port"] == "default"
    with pytest.raises(FluxopsError) as info:
        s.require_models_dir()
    assert info.value.code == "models_dir.unknown"


def test_precedence_flag_env_config_default(isolated, tmp_path: Path) -> None:
    config = tmp_path / "conf" / "fluxops.toml"
    config.parent.mkdir()
    config.write_text('port = 9000\njobs = 5\ncomfyui_dir = "comfy"\nhost = "10.0.0.1"\n', encoding="utf-8")
    env = {"FLUXOPS_PORT": "9100", "FLUXOPS_HOST": "127.0.0.2"}
    s = load_settings({"host": "127.0.0.3"}, env=env, config=config)
    assert (s.host, s.sources["host"]) == ("127.0.0.3", "--host")
    assert (s.port, s.sources["port"]) == (9100, "FLUXOPS_PORT")
    assert s.parallel_files == 5 and s.sources["jobs"].startswith("config file")
    assert s.comfyui_dir == config.parent / "comfy"  # relative to the config file
    assert s.models_dir == config.parent / "comfy" / "models"  # derived from comfyui_dir
    assert s.sources["config_file"] == "--config"


def test_models_dir_from_env_beats_comfyui_dir(isolated, tmp_path: Path) -> None:
    s = load_settings({"comfyui_dir": tmp_path / "c"}, env={"FLUXOPS_MODELS_DIR": str(tmp_path / "m")})
    assert s.models_dir == tmp_path / "m"


def test_config_file_from_env_and_user_dir(isolated, tmp_path: Path) -> None:
    user_conf = Path(isolated["XDG_CONFIG_HOME"]) / "fluxops" / "fluxops.toml"
    user_conf.parent.mkdir(parents=True)
    user_conf.write_text("jobs = 7\n", encoding="utf-8")
    assert load_settings({}, env={}).parallel_files == 7
    other = tmp_path / "other.toml"
    other.write_text("jobs = 9\n", encoding="utf-8")
    s = load_settings({}, env={"FLUXOPS_CONFIG": str(other)})
    assert s.parallel_files == 9 and s.sources["config_file"] == "FLUXOPS_CONFIG"


@pytest.mark.parametrize("content,expected", [
    ("jobs = 0\n", "jobs from config file"),
    ("port = 70000\n", "port from config file"),
    ("colour = 'red'\n", "unknown setting 'colour'"),
    ("jobs = \n", "not valid TOML"),
])
def test_bad_config_is_a_clear_error(isolated, tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content, encoding="utf-8")
    with pytest.raises(FluxopsError) as info:
        load_settings({}, env={}, config=config)
    assert info.value.code == "config.invalid" and expected in info.value.message


def test_bad_env_value_names_the_variable(isolated) -> None:
    with pytest.raises(FluxopsError) as info:
        load_settings({}, env={"FLUXOPS_PORT": "eighty"})
    assert "FLUXOPS_PORT" in info.value.message


def test_config_command_shows_sources(cli, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("jobs = 4\n", encoding="utf-8")
    proc = cli("--config", str(config), "config", "--models-dir", str(tmp_path), "--json",
               env={"FLUXOPS_PORT": "8200"})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)["data"]
    assert data["models_dir"] == {"value": str(tmp_path), "source": "--models-dir"}
    assert data["port"] == {"value": "8200", "source": "FLUXOPS_PORT"}
    assert data["jobs"]["source"] == f"config file {config}"
    assert data["host"]["source"] == "default"
    human = cli("--config", str(config), "config")
    assert "FLUXOPS_PORT" not in human.stdout and "config file" in human.stdout


def test_saving_a_setting_keeps_the_other_keys_and_comments(isolated, tmp_path: Path) -> None:
    from fluxops.settings import save_setting

    config = tmp_path / "conf" / "fluxops.toml"
    config.parent.mkdir()
    config.write_text('# my settings\njobs = 2  # two files at once\ncomfyui_dir = "/old"\n', encoding="utf-8")
    settings = load_settings({}, env={}, config=config)
    assert save_setting(settings, "comfyui_dir", "/srv/ComfyUI") == config
    assert config.read_text(encoding="utf-8") == ('# my settings\njobs = 2  # two files at once\n'
                                                  'comfyui_dir = "/srv/ComfyUI"\n')
    assert save_setting(load_settings({}, env={}, config=config), "comfyui_dir", "/srv/ComfyUI") is None
    fresh = load_settings({}, env={})  # no config file yet: the user's fluxops.toml is created
    written = save_setting(fresh, "comfyui_dir", "/srv/ComfyUI")
    assert written == Path(isolated["XDG_CONFIG_HOME"]) / "fluxops" / "fluxops.toml"
    assert load_settings({}, env={}).comfyui_dir == Path("/srv/ComfyUI")


def test_an_unconfigured_comfyui_dir_is_discovered(isolated, tmp_path: Path) -> None:
    found = tmp_path / "ComfyUI"
    s = load_settings({}, env={}, discover=lambda cwd, env: (found, "~/ComfyUI"))
    assert (s.comfyui_dir, s.sources["comfyui_dir"], s.discovered) == (found, "discovered", "~/ComfyUI")
    assert s.models_dir == found / "models"
    configured = load_settings({"comfyui_dir": str(tmp_path / "mine")}, env={},
                               discover=lambda cwd, env: (found, "~/ComfyUI"))
    assert configured.sources["comfyui_dir"] == "--comfyui-dir" and configured.discovered is None
