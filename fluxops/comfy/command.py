"""ComfyUI's command line as fluxops builds it (the flags of ComfyUI's `comfy/cli_args.py`,
https://github.com/comfyanonymous/ComfyUI/blob/master/comfy/cli_args.py), and the extra_model_paths.yaml that
wires a models folder outside `<ComfyUI>/models` into ComfyUI."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from fluxops.comfy.client import is_loopback
from fluxops.errors import FluxopsError
from fluxops.models.layout import FOLDERS

DEFAULT_LISTEN = "127.0.0.1"
# ComfyUI's mutually exclusive VRAM group plus --reserve-vram: when the user passes any of these through
# --comfy-arg, the memory flags fluxops would add (doctor's VRAM budget) are left out.
MEMORY_FLAGS = (
    "--gpu-only",
    "--highvram",
    "--normalvram",
    "--lowvram",
    "--novram",
    "--cpu",
    "--reserve-vram",
)
# fluxops owns these: it must know the address to probe, and it never opens a browser.
_OWNED_FLAGS = {"--listen": "--listen", "--port": "--port", "--auto-launch": None}
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$")


def parse_listen(value: str) -> list[str]:
    """ComfyUI's --listen value: one address or a comma-separated list (IPs or host names)."""
    addresses = [part.strip() for part in value.split(",") if part.strip()]
    if not addresses:
        raise FluxopsError("comfy.bad_listen", "--listen needs an address, e.g. 127.0.0.1")
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            if not _HOSTNAME.match(address):
                raise FluxopsError(
                    "comfy.bad_listen", f"--listen {value!r}: {address!r} is not an IP address or host name"
                ) from None
    return addresses


def exposed_addresses(addresses: Sequence[str]) -> list[str]:
    """The addresses that are reachable from other machines (anything but loopback)."""
    return [address for address in addresses if not is_loopback(address)]


def connect_host(listen: str) -> str:
    """The one rule for where fluxops connects to a ComfyUI that listens on `listen` (a --listen value or the
    host setting): the first address, or loopback of the same family for a wildcard (0.0.0.0, ::)."""
    first = next((part.strip() for part in listen.split(",") if part.strip()), listen.strip())
    try:
        ip = ipaddress.ip_address(first)
    except ValueError:
        return first
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return first


def split_comfy_args(values: Sequence[str]) -> list[str]:
    """Each --comfy-arg value is split like a shell would (`--reserve-vram 2` gives two arguments)."""
    args: list[str] = []
    for value in values:
        args.extend(shlex.split(value, posix=os.name != "nt"))
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in _OWNED_FLAGS:
            own = _OWNED_FLAGS[flag]
            fix = f"use fluxops's own {own} option" if own else "fluxops never opens a browser"
            raise FluxopsError("comfy.bad_argument", f"--comfy-arg {arg}: {fix}")
    return args


def build_command(
    python: Path,
    main_py: Path,
    *,
    listen: str,
    port: int,
    extra_paths_yaml: Path | None = None,
    memory_flags: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> list[str]:
    """`python main.py --listen A --port N --disable-auto-launch [--extra-model-paths-config Y] [memory]
    [extra]`.

    `memory_flags` is the seam for doctor's VRAM budget (e.g. ["--lowvram"]); it is dropped when the user
    passes a memory flag of their own in `extra_args`.
    """
    command = [str(python), str(main_py), "--listen", listen, "--port", str(port), "--disable-auto-launch"]
    if extra_paths_yaml is not None:
        command += ["--extra-model-paths-config", str(extra_paths_yaml)]
    user_memory = any(arg.split("=", 1)[0] in MEMORY_FLAGS for arg in extra_args)
    if not user_memory:
        command += list(memory_flags)
    command += list(extra_args)
    return command


def models_outside(comfyui_dir: Path, models_dir: Path | None) -> bool:
    """True when the models folder is not ComfyUI's own `<ComfyUI>/models` (so ComfyUI must be told)."""
    if models_dir is None:
        return False
    return os.path.realpath(models_dir) != os.path.realpath(comfyui_dir / "models")


def extra_paths_text(models_dir: Path) -> str:
    """An extra_model_paths.yaml block listing every model folder under `models_dir`, searched first.

    Written by hand rather than with yaml.dump: ComfyUI needs each folder's paths as ONE string with one path
    per line (a YAML list crashes it), and a literal block is the readable way to write that.
    """
    lines = [
        "# Written by fluxops: ComfyUI's model folders live in the models dir below.",
        "fluxops:",
        f"    base_path: {_yaml_scalar(str(models_dir))}",
        "    is_default: true",
    ]
    for folder, on_disk in FOLDERS.items():
        lines.append(f"    {folder}: |")
        # is_default puts each path FIRST as it is read, so list them in reverse to keep ComfyUI's order
        lines.extend(f"        {name}" for name in reversed(on_disk))
    return "\n".join(lines) + "\n"


def _yaml_scalar(text: str) -> str:
    import json

    return json.dumps(text)  # a JSON string is a valid double-quoted YAML scalar


def write_extra_paths(path: Path, models_dir: Path) -> Path:
    from fluxops.files import write_atomic

    write_atomic(path, extra_paths_text(models_dir).encode("utf-8"))
    return path
