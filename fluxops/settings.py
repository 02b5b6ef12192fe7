"""Settings, resolved once per command from flags > environment > config file > defaults, then passed down.

Nothing else in fluxops reads FLUXOPS_* variables or the config file. Each value remembers where it came
from, so `fluxops config` can show it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fluxops.errors import FluxopsError
from fluxops.files import write_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_MANIFEST_NAME = "flux-krea-turbo.toml"
CONFIG_ENV = "FLUXOPS_CONFIG"


def packaged_manifest() -> Path:
    """The default manifest shipped inside the package (works without a checkout)."""
    return Path(str(resources.files("fluxops") / "data" / "manifests" / DEFAULT_MANIFEST_NAME))


def _user_config_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("fluxops", appauthor=False)) / "fluxops.toml"


def _user_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir("fluxops", appauthor=False))


def _path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError("expected a path")
    return Path(os.path.expandvars(os.path.expanduser(str(value))))


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    return int(value)


def _port(value: Any) -> int:
    port = _int(value)
    if not 1 <= port <= 65535:
        raise ValueError("expected a port number between 1 and 65535")
    return port


def _positive(value: Any) -> int:
    number = _int(value)
    if number < 1:
        raise ValueError("expected a whole number of at least 1")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false (1/0, yes/no, on/off)")


MIN_SEGMENT_SIZE = 64 * 1024  # below this, one ranged request per segment costs more than its bytes


def _segment_size(value: Any) -> int:
    number = _int(value)
    if number < MIN_SEGMENT_SIZE:
        raise ValueError(f"expected at least {MIN_SEGMENT_SIZE} bytes (64 KiB)")
    return number


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds")
    number = float(value)
    if not 0 < number < 86400:  # also refuses nan and inf
        raise ValueError("expected a number of seconds greater than 0")
    return number


def _url(value: Any) -> str:
    from urllib.parse import urlsplit

    text = _str(value)
    parts = urlsplit(text)  # raises ValueError on a broken IPv6 host
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL such as https://huggingface.co")
    _ = parts.port  # raises ValueError on a port that is not a number
    return text


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


@dataclass(frozen=True)
class Spec:
    """One setting: its environment variable, how to parse it, and its default (may depend on others).

    A setting's name is its config-file key, its flag (`--name`) and its row in `fluxops config`; `attribute`
    names the Settings field when the user-facing name would mislead in code.
    """

    env: str | None
    parse: Callable[[Any], Any]
    default: Callable[[dict[str, Any]], Any]
    help: str
    is_path: bool = False
    attribute: str | None = None

    def field_name(self, name: str) -> str:
        return self.attribute or name


# Order matters: a default may use settings resolved before it.
SPECS: dict[str, Spec] = {
    "comfyui_dir": Spec("FLUXOPS_COMFYUI_DIR", _path, lambda s: None, "the ComfyUI checkout", True),
    "comfyui_python": Spec("FLUXOPS_COMFYUI_PYTHON", _path, lambda s: None,
                           "ComfyUI's Python interpreter (found next to ComfyUI when unset)", True),
    "models_dir": Spec("FLUXOPS_MODELS_DIR", _path,
                       lambda s: s["comfyui_dir"] / "models" if s["comfyui_dir"] else None,
                       "the ComfyUI models folder", True),
    "manifest": Spec("FLUXOPS_MANIFEST", _path, lambda s: packaged_manifest(), "the model manifest", True),
    "state_dir": Spec("FLUXOPS_STATE_DIR", _path, lambda s: _user_state_dir(),
                      "caches, logs, server state and reports", True),
    "output_dir": Spec("FLUXOPS_OUTPUT_DIR", _path, lambda s: Path("outputs"), "where images are saved", True),
    "host": Spec("FLUXOPS_HOST", _str, lambda s: "127.0.0.1", "the ComfyUI server's address"),
    "port": Spec("FLUXOPS_PORT", _port, lambda s: 8188, "the ComfyUI server's port"),
    "hf_endpoint": Spec("HF_ENDPOINT", _url, lambda s: "https://huggingface.co", "the Hugging Face Hub"),
    # `jobs` to the user (as in make -j); in code `parallel_files`, apart from generate's jobs (prompts)
    "jobs": Spec("FLUXOPS_JOBS", _positive, lambda s: 3, "files downloaded or hashed at once",
                 attribute="parallel_files"),
    "connections": Spec("FLUXOPS_CONNECTIONS", _positive, lambda s: 8, "HTTP connections per download"),
    "segment_size": Spec("FLUXOPS_SEGMENT_SIZE", _segment_size, lambda s: 32 * 1024 * 1024,
                         "bytes per download segment (one ranged request each; at least 64 KiB)"),
    "stall_timeout": Spec("FLUXOPS_STALL_TIMEOUT", _seconds, lambda s: 20.0,
                          "seconds without a byte before a download connection is dropped (also the longest "
                          "Retry-After honoured)"),
    "hf_offline": Spec("HF_HUB_OFFLINE", _bool, lambda s: False, "no network calls to the Hub"),
    "torch_index_base": Spec("FLUXOPS_TORCH_INDEX_BASE", _str, lambda s: "https://download.pytorch.org/whl",
                             "PyTorch's wheel indexes (a mirror of download.pytorch.org/whl keeps the choice)"),
}


@dataclass(frozen=True)
class Settings:
    comfyui_dir: Path | None
    comfyui_python: Path | None
    models_dir: Path | None
    manifest: Path
    state_dir: Path
    output_dir: Path
    host: str
    port: int
    hf_endpoint: str
    parallel_files: int  # the `jobs` setting: files downloaded or hashed at once
    connections: int
    segment_size: int = 32 * 1024 * 1024
    stall_timeout: float = 20.0
    hf_offline: bool = False
    torch_index_base: str = "https://download.pytorch.org/whl"
    config_file: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    discovered: str | None = None  # where an unconfigured comfyui_dir was found (sources says "discovered")

    def require_models_dir(self) -> Path:
        if self.models_dir is None:
            raise FluxopsError("models_dir.unknown", "no models directory: fluxops does not know where ComfyUI "
                               "keeps its models")
        from fluxops.models.modelsdir import check_models_dir

        return check_models_dir(self.models_dir)

    # Where fluxops keeps its own state, one name each (nothing joins these paths by hand elsewhere).
    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def verify_cache_path(self) -> Path:
        """Verdicts of `fluxops verify` and setup, keyed by file identity."""
        return self.cache_dir / "verify.json"

    @property
    def torch_cache_path(self) -> Path:
        """What ComfyUI's torch answered, keyed by the torch install."""
        return self.cache_dir / "torch.json"

    @property
    def comfy_state_dir(self) -> Path:
        return self.state_dir / "comfy"

    @property
    def comfy_server_path(self) -> Path:
        """The one ComfyUI server fluxops started (pid, start time, command, log)."""
        return self.comfy_state_dir / "server.json"

    @property
    def comfy_lock_path(self) -> Path:
        return self.comfy_state_dir / "server.lock"

    @property
    def comfy_install_lock_path(self) -> Path:
        """Held by `fluxops comfy install` while it changes an install."""
        return self.comfy_state_dir / "install.lock"

    @property
    def comfy_log_dir(self) -> Path:
        return self.comfy_state_dir / "logs"

    @property
    def extra_paths_yaml(self) -> Path:
        """The extra_model_paths.yaml fluxops writes when the models dir is outside ComfyUI."""
        return self.comfy_state_dir / "extra_model_paths.yaml"

    @property
    def maintain_dir(self) -> Path:
        """maintain's reports, history, lock and health-check image."""
        return self.state_dir / "maintain"

    def shown(self) -> list[tuple[str, str, str]]:
        """(name, value, source) for every setting, for `fluxops config`."""
        rows = []
        for name, spec in SPECS.items():
            value = getattr(self, spec.field_name(name))
            rows.append((name, "" if value is None else str(value), self.sources.get(name, "default")))
        rows.append(("config_file", str(self.config_file or ""), self.sources.get("config_file", "default")))
        return rows

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise FluxopsError("config.invalid", f"{path}: cannot read the config file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise FluxopsError("config.invalid", f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                           f"offset {exc.start}); save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise FluxopsError("config.invalid", f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - set(SPECS))
    if unknown:
        raise FluxopsError("config.invalid", f"{path}: unknown setting {unknown[0]!r}; known settings: "
                           + ", ".join(SPECS))
    return data


Discover = Callable[[Path, Mapping[str, str]], "tuple[Path, str] | None"]


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                  config: Path | None = None, cwd: Path | None = None, discover: Discover | None = None) -> Settings:
    """Resolve every setting once. ``flags`` holds command-line values (None = not given). ``discover`` finds
    a ComfyUI when no comfyui_dir is given anywhere: (path, where it was found), or None."""
    flags = dict(flags or {})
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    unknown_flags = set(flags) - set(SPECS)
    if unknown_flags:
        raise ValueError(f"unknown settings {sorted(unknown_flags)}")

    sources: dict[str, str] = {}
    config_file: Path | None = None
    if config is not None:
        config_file, sources["config_file"] = config, "--config"
    elif env.get(CONFIG_ENV):
        config_file, sources["config_file"] = _path(env[CONFIG_ENV]), CONFIG_ENV
    else:
        candidate = _user_config_file()
        if candidate.is_file():
            config_file, sources["config_file"] = candidate, "user config dir"
    file_values = _read_config(config_file) if config_file is not None else {}

    resolved: dict[str, Any] = {}
    discovered: str | None = None
    for name, spec in SPECS.items():
        flag_name = "--" + name.replace("_", "-")
        raw: Any = None
        base = cwd
        if flags.get(name) is not None:
            raw, where = flags[name], flag_name
        elif spec.env and env.get(spec.env, "").strip():
            raw, where = env[spec.env], spec.env
        elif name in file_values:
            raw, where = file_values[name], f"config file {config_file}"
            base = config_file.parent if config_file else cwd  # relative paths in the file: from the file
        found = discover(cwd, env) if raw is None and name == "comfyui_dir" and discover is not None else None
        if found is not None:
            (value, discovered), where = found, "discovered"
        elif raw is None:
            value, where = spec.default(resolved), "default"
        else:
            try:
                value = spec.parse(raw)
            except (TypeError, ValueError) as exc:
                raise FluxopsError("config.invalid", f"{name} from {where}: {raw!r} is not valid ({exc})") from exc
        if spec.is_path and isinstance(value, Path) and not value.is_absolute():
            value = base / value
        resolved[name] = value
        sources[name] = where
    fields = {SPECS[name].field_name(name): value for name, value in resolved.items()}
    return Settings(**fields, config_file=config_file, sources=sources, discovered=discovered)


def config_file_for_saving(settings: Settings) -> Path:
    """The config file a command saves a setting in: the one in use, else the user's fluxops.toml."""
    return settings.config_file or _user_config_file()


def save_setting(settings: Settings, name: str, value: str) -> Path | None:
    """Set `name` in the config file, keeping its other keys and comments (tomlkit edits the document in
    place); written atomically. Returns the file, or None when it already held that value."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    if name not in SPECS:
        raise ValueError(f"unknown setting {name!r}")
    path = config_file_for_saving(settings)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        document = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, ParseError) as exc:
        raise FluxopsError("config.invalid", f"{path}: cannot update the config file ({exc})") from exc
    if document.get(name) == value:
        return None
    document[name] = value
    try:
        write_atomic(path, tomlkit.dumps(document).encode("utf-8"))
    except OSError as exc:
        raise FluxopsError("config.invalid", f"{path}: cannot write the config file ({exc.strerror})") from exc
    return path
