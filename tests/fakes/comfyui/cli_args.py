"""ComfyUI's command line (comfy/cli_args.py, v0.3.64): the flags a launcher or client cares about.

Same names, arities and defaults as the real parser, so a wrong or unknown flag fails here the way it fails in
ComfyUI: argparse prints `main.py: error: unrecognized arguments: ...` and exits 2.
"""

from __future__ import annotations

import argparse
import os

_FP_UNET = (
    "--fp32-unet",
    "--fp64-unet",
    "--bf16-unet",
    "--fp16-unet",
    "--fp8_e4m3fn-unet",
    "--fp8_e5m2-unet",
    "--fp8_e8m0fnu-unet",
)
_FP_TEXT = (
    "--fp8_e4m3fn-text-enc",
    "--fp8_e5m2-text-enc",
    "--fp16-text-enc",
    "--fp32-text-enc",
    "--bf16-text-enc",
)
_FP_VAE = ("--fp16-vae", "--fp32-vae", "--bf16-vae", "--cpu-vae")


def _existing_dir(value: str) -> str:
    if not os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"'{value}' is not a valid directory.")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py")
    p.add_argument("--listen", type=str, default="127.0.0.1", metavar="IP", nargs="?", const="0.0.0.0,::")
    p.add_argument("--port", type=int, default=8188)
    p.add_argument("--tls-keyfile", type=str)
    p.add_argument("--tls-certfile", type=str)
    p.add_argument("--enable-cors-header", type=str, default=None, metavar="ORIGIN", nargs="?", const="*")
    p.add_argument("--max-upload-size", type=float, default=100)
    p.add_argument("--base-directory", type=str, default=None)
    p.add_argument(
        "--extra-model-paths-config", type=str, default=None, metavar="PATH", nargs="+", action="append"
    )
    p.add_argument("--output-directory", type=str, default=None)
    p.add_argument("--temp-directory", type=str, default=None)
    p.add_argument("--input-directory", type=str, default=None)
    p.add_argument("--user-directory", type=_existing_dir, default=None)
    p.add_argument("--auto-launch", action="store_true")
    p.add_argument("--disable-auto-launch", action="store_true")
    p.add_argument("--cuda-device", type=int, default=None, metavar="DEVICE_ID")
    p.add_argument("--default-device", type=int, default=None, metavar="DEFAULT_DEVICE_ID")
    malloc = p.add_mutually_exclusive_group()
    malloc.add_argument("--cuda-malloc", action="store_true")
    malloc.add_argument("--disable-cuda-malloc", action="store_true")
    fp = p.add_mutually_exclusive_group()
    fp.add_argument("--force-fp32", action="store_true")
    fp.add_argument("--force-fp16", action="store_true")
    for group_flags in (_FP_UNET, _FP_TEXT, _FP_VAE):
        group = p.add_mutually_exclusive_group()
        for flag in group_flags:
            group.add_argument(flag, action="store_true")
    p.add_argument("--supports-fp8-compute", action="store_true")
    p.add_argument("--fast", nargs="*", type=str, default=None)
    p.add_argument(
        "--preview-method", type=str, default="none", choices=["none", "auto", "latent2rgb", "taesd"]
    )
    p.add_argument("--preview-size", type=int, default=512)
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache-classic", action="store_true")
    cache.add_argument("--cache-lru", type=int, default=0)
    cache.add_argument("--cache-none", action="store_true")
    vram = p.add_mutually_exclusive_group()
    for flag in ("--gpu-only", "--highvram", "--normalvram", "--lowvram", "--novram", "--cpu"):
        vram.add_argument(flag, action="store_true")
    p.add_argument("--reserve-vram", type=float, default=None)
    p.add_argument("--disable-smart-memory", action="store_true")
    p.add_argument("--deterministic", action="store_true")
    p.add_argument("--dont-print-server", action="store_true")
    p.add_argument("--quick-test-for-ci", action="store_true")
    p.add_argument("--windows-standalone-build", action="store_true")
    p.add_argument("--disable-metadata", action="store_true")
    p.add_argument("--disable-all-custom-nodes", action="store_true")
    p.add_argument("--whitelist-custom-nodes", type=str, nargs="+", default=[])
    p.add_argument("--disable-api-nodes", action="store_true")
    p.add_argument("--multi-user", action="store_true")
    p.add_argument(
        "--verbose",
        default="INFO",
        const="DEBUG",
        nargs="?",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )
    p.add_argument("--log-stdout", action="store_true")
    p.add_argument("--front-end-version", type=str, default="comfyanonymous/ComfyUI@latest")
    p.add_argument("--front-end-root", type=str, default=None)
    p.add_argument("--enable-compress-response-body", action="store_true")
    p.add_argument("--database-url", type=str, default=None)
    p.add_argument("--comfy-api-base", type=str, default="https://api.comfy.org")
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)
