"""Wall time of the whole `fluxops doctor` process, warm verification cache, no ComfyUI server.

Sets up a throw-away ComfyUI folder (main.py, a git commit, this interpreter as its Python), a models folder
with five small well-formed safetensors files and a manifest pinning them, runs `fluxops verify` once to warm
the cache (and one doctor run to warm the torch answer), then times N runs of `fluxops doctor` against N runs
of `python -c pass` and `python -m fluxops --version` in the same process. Prints medians and ratios.

    python benchmarks/doctor_bench.py [--runs 9]

Target (issue 9): doctor under 1 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = [
    ("diffusion_model", "diffusion_models", "flux1-krea-dev_fp8_scaled.safetensors", "F8_E4M3", 1),
    ("clip_l", "text_encoders", "clip_l.safetensors", "F16", 2),
    ("t5xxl", "text_encoders", "t5xxl_fp16.safetensors", "F16", 2),
    ("vae", "vae", "ae.safetensors", "F32", 4),
    ("lora", "loras", "FLUX.1-Turbo-Alpha.safetensors", "BF16", 2),
]


def write_model(path: Path, dtype: str, width: int, elements: int = 1 << 16) -> tuple[int, str]:
    header = json.dumps({"w": {"dtype": dtype, "shape": [elements], "data_offsets": [0, elements * width]}}).encode()
    data = struct.pack("<Q", len(header)) + header + bytes(elements * width)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data), hashlib.sha256(data).hexdigest()


def setup(root: Path) -> list[str]:
    models, comfy = root / "models", root / "ComfyUI"
    entries = []
    for file_id, folder, name, dtype, width in FILES:
        size, sha = write_model(models / folder / name, dtype, width)
        entries.append(
            f'[[file]]\nid = "{file_id}"\nfolder = "{folder}"\nfilename = "{name}"\nsize = {size}\n'
            f'sha256 = "{sha}"\n[[file.source]]\nrepo = "org/{file_id}"\npath = "{name}"\n'
        )
    manifest = root / "bench.toml"
    manifest.write_text('schema = 1\nname = "bench"\n\n' + "\n".join(entries), encoding="utf-8")
    comfy.mkdir()
    (comfy / "main.py").write_text("print('ComfyUI')\n", encoding="utf-8")
    (comfy / "comfyui_version.py").write_text('__version__ = "0.3.64"\n', encoding="utf-8")
    if shutil.which("git"):
        git = ["git", "-C", str(comfy), "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
        for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "bench"]):
            subprocess.run([*git, *args], check=True)
    with socket.socket() as sock:  # a port nothing listens on: "no ComfyUI server"
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return [
        "--comfyui-dir",
        str(comfy),
        "--comfyui-python",
        sys.executable,
        "--models-dir",
        str(models),
        "--manifest",
        str(manifest),
        "--port",
        str(port),
    ]


def timed(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fluxops-doctor-bench-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "FLUXOPS_STATE_DIR": str(root / "state"),
            "HF_HOME": str(root / "hf"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONPATH": str(REPO),
        }
        flags = setup(root)
        fluxops = [sys.executable, "-m", "fluxops"]
        verify = subprocess.run([*fluxops, "verify", *flags[4:8]], env=env, capture_output=True, text=True)
        if verify.returncode != 0:
            print(verify.stdout, verify.stderr)
            return 1
        warm = subprocess.run([*fluxops, "doctor", *flags], env=env, capture_output=True, text=True)
        summary = [line for line in warm.stdout.splitlines() if line.startswith(("[", "•", "!"))]
        print("doctor checks in this setup:", *summary, sep="\n  ")
        results = {
            "python -c pass": timed([sys.executable, "-c", "pass"], env, args.runs),
            "fluxops --version": timed([*fluxops, "--version"], env, args.runs),
            "fluxops doctor": timed([*fluxops, "doctor", *flags], env, args.runs),
        }
    reference = statistics.median(results["python -c pass"])
    print(
        f"\n{args.runs} runs each, median wall time (machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}):"
    )
    for name, times in results.items():
        median = statistics.median(times)
        print(
            f"  {name:<20} {median * 1000:8.1f} ms   min {min(times) * 1000:7.1f} ms   "
            f"x{median / reference:6.1f} of python -c pass"
        )
    doctor = statistics.median(results["fluxops doctor"])
    print(f"\nfluxops doctor: {doctor:.3f} s (target < 1 s): {'OK' if doctor < 1.0 else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
