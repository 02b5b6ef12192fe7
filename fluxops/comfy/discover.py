"""Find an existing ComfyUI when none is configured, in the places people and installers put it.

In order: the current directory and its parents; `~/ComfyUI`; comfy-cli's configured default workspace
(`default_workspace` in its config.ini) and its built-in default; ComfyUI Desktop's base path (`basePath` in
its config.json). The first that holds a ComfyUI wins, and the caller says where it came from.

comfy-cli's locations: https://github.com/Comfy-Org/comfy-cli/blob/main/comfy_cli/constants.py
(DEFAULT_COMFY_WORKSPACE, DEFAULT_CONFIG) and comfy_cli/config_manager.py (config.ini, section DEFAULT).
ComfyUI Desktop keeps its settings in Electron's userData folder, `config.json` with `basePath`:
https://github.com/Comfy-Org/desktop/blob/main/src/store/desktopSettings.ts ; its models, custom nodes and
.venv live under that base path, its ComfyUI code inside the application.
"""

from __future__ import annotations

import configparser
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Discovered:
    path: Path
    where: str  # e.g. "the current directory", "comfy-cli's default workspace"

    def describe(self) -> str:
        return f"found ComfyUI at {self.path} ({self.where})"


def looks_like_comfyui(path: Path) -> bool:
    """A ComfyUI checkout: main.py beside ComfyUI's own comfyui_version.py or folder_paths.py."""
    try:
        return (path / "main.py").is_file() and (
            (path / "comfyui_version.py").is_file() or (path / "folder_paths.py").is_file())
    except OSError:
        return False


def looks_like_desktop_base(path: Path) -> bool:
    """ComfyUI Desktop's base path: its models folder and the .venv Desktop creates there."""
    try:
        return (path / "models").is_dir() and (path / ".venv").is_dir()
    except OSError:
        return False


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())


def _comfy_cli_config(home: Path, env: Mapping[str, str], platform: str) -> Path:
    if platform == "win32":
        return home / "AppData" / "Local" / "comfy-cli" / "config.ini"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "comfy-cli" / "config.ini"
    return home / ".config" / "comfy-cli" / "config.ini"  # comfy-cli does not follow XDG_CONFIG_HOME


def _comfy_cli_default(home: Path, platform: str) -> Path:
    if platform in ("win32", "darwin"):
        return home / "Documents" / "comfy" / "ComfyUI"
    return home / "comfy" / "ComfyUI"


def _desktop_config(home: Path, env: Mapping[str, str], platform: str) -> Path:
    if platform == "win32":
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "ComfyUI" / "config.json"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "ComfyUI" / "config.json"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "ComfyUI" / "config.json"


def _configured_workspace(config_ini: Path) -> Path | None:
    parser = configparser.ConfigParser()
    try:
        parser.read(config_ini, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    value = parser.defaults().get("default_workspace", "").strip()
    return Path(value).expanduser() if value else None


def _desktop_base(config_json: Path) -> Path | None:
    try:
        data = json.loads(config_json.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    value = data.get("basePath") if isinstance(data, dict) else None
    return Path(value).expanduser() if isinstance(value, str) and value.strip() else None


def candidates(cwd: Path, env: Mapping[str, str], platform: str) -> Iterator[tuple[Path, str, bool]]:
    """(path, where, is_desktop_base) in the order they are tried."""
    for folder in (cwd, *cwd.parents):
        yield folder, "the current directory" if folder == cwd else "a parent of the current directory", False
    home = _home(env)
    yield home / "ComfyUI", "~/ComfyUI", False
    config_ini = _comfy_cli_config(home, env, platform)
    workspace = _configured_workspace(config_ini)
    if workspace is not None:
        yield workspace, f"comfy-cli's default workspace in {config_ini}", False
    yield _comfy_cli_default(home, platform), "comfy-cli's default workspace", False
    desktop_json = _desktop_config(home, env, platform)
    base = _desktop_base(desktop_json)
    if base is not None:
        yield base, f"ComfyUI Desktop's base path in {desktop_json}", True


def discover(cwd: Path, env: Mapping[str, str], platform: str) -> Discovered | None:
    """The first ComfyUI in the usual places, or None."""
    for path, where, desktop in candidates(cwd, env, platform):
        if looks_like_desktop_base(path) if desktop else looks_like_comfyui(path):
            return Discovered(path.resolve(), where)
    return None
