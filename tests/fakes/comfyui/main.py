"""The fake ComfyUI's main: ComfyUI's flags, its start-up order and log lines, then an aiohttp server.

Start-up order, like ComfyUI v0.3.64's main.py: parse the flags (unknown ones exit 2), load
`<ComfyUI>/extra_model_paths.yaml` and each --extra-model-paths-config (a YAML list value crashes), run the
custom_nodes prestartup (crashes when `<base>/custom_nodes` is missing), print the recorded start-up lines,
then bind at the very end ("Starting server", "To see the GUI go to: ..."). A port in use fails at bind with
the real OSError text. Faults come from FAKE_COMFYUI_* variables (faults.py).

A temporary ComfyUI dir gets a two-line main.py that calls `run(root)` (see install.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

from tests.fakes.comfyui import cli_args, log
from tests.fakes.comfyui.faults import Faults
from tests.fakes.comfyui.folders import FolderPaths
from tests.fakes.comfyui.state import DATA, FakeComfy


def _startup_lines(comfy: FakeComfy) -> list[str]:
    """The recorded start-up log up to "Starting server", adapted to this install and device."""
    recorded = (DATA / "startup_log.txt").read_text(encoding="utf-8").split("\nStarting server\n")[0]
    lines = []
    for line in recorded.splitlines():
        line = line.replace("/opt/ComfyUI", str(comfy.root))
        if line.startswith("ComfyUI version:"):
            line = f"ComfyUI version: {comfy.version}"
        elif line.startswith("Set vram state to:") and not comfy.args.cpu:
            line = "Set vram state to: NORMAL_VRAM"
        elif line == "Device: cpu" and not comfy.args.cpu:
            line = "Device: cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"
        lines.append(line)
    return lines


def _load_model_paths(args, root: Path, base_dir: Path, output_dir: Path) -> FolderPaths:
    folders = FolderPaths(base_dir, output_dir)
    yamls = [root / "extra_model_paths.yaml"] if (root / "extra_model_paths.yaml").is_file() else []
    for group in args.extra_model_paths_config or []:
        yamls.extend(Path(p) for p in group)
    for yaml_path in yamls:
        folders.load_extra_yaml(yaml_path)
    return folders


async def _serve(comfy: FakeComfy) -> None:
    from aiohttp import web

    from tests.fakes.comfyui.app import build_app

    runner = web.AppRunner(build_app(comfy), access_log=None)
    await runner.setup()
    for address in comfy.args.listen.split(","):
        site = web.TCPSite(runner, address, comfy.args.port)
        await site.start()  # OSError "[Errno 98] error while attempting to bind on address ..." when taken
        if not comfy.args.dont_print_server:
            shown = f"[{address}]" if ":" in address else address
            logging.info("Starting server\n")
            logging.info("To see the GUI go to: http://%s:%s", shown, comfy.args.port)
    log.flush()
    if comfy.faults.exit_after is not None:
        await asyncio.sleep(comfy.faults.exit_after)
        logging.error("fake ComfyUI: exiting after %s s (FAKE_COMFYUI_EXIT_AFTER)", comfy.faults.exit_after)
        log.flush()
        os._exit(1)
    while True:
        await asyncio.sleep(3600)


def run(root: Path, argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    faults = Faults.from_env(os.environ)
    faults.record_pid(argv)
    if faults.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    args = cli_args.parse(argv[1:])
    log.setup(args.log_stdout, args.verbose)
    base_dir = Path(args.base_directory).resolve() if args.base_directory else root
    output_dir = Path(args.output_directory) if args.output_directory else base_dir / "output"
    folders = _load_model_paths(args, root, base_dir, output_dir)
    if not args.disable_all_custom_nodes:
        os.listdir(base_dir / "custom_nodes")  # FileNotFoundError, like execute_prestartup_script
    comfy = FakeComfy(args, argv, root, base_dir, folders, faults)
    for line in _startup_lines(comfy):
        logging.info(line)
    log.flush()
    if faults.crash:
        sys.stderr.write(faults.crash_text())
        return 1
    if faults.never_ready:
        while True:
            time.sleep(3600)
    time.sleep(faults.start_delay)
    try:
        asyncio.run(_serve(comfy))
    except KeyboardInterrupt:
        logging.info("\nStopped server")
    return 0


if __name__ == "__main__":  # pragma: no cover - started as a process
    sys.exit(run(Path(__file__).resolve().parent))
