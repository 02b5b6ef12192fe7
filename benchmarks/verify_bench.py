"""Benchmark `fluxops verify` against sha256sum (and b3sum) on ~4 GiB of files shaped like the manifest.

Run: python benchmarks/verify_bench.py [--gib 4] [--keep]
Prints, from one run: sha256sum over all files, b3sum (when installed), `fluxops verify --full` first pass
(sha256 + blake3, nothing cached), `--full` re-check (blake3 against the recorded hashes) and a cached
`fluxops verify` (one stat per file), each as wall seconds and a ratio to sha256sum. All runs read from the
page cache (the files are read once before timing), so the figures compare CPU work, not the disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The real files' share of the 22.97 GB total, with their names and folders.
SHAPE = [
    ("diffusion_model", "diffusion_models", "flux1-krea-dev_fp8_scaled.safetensors", 11904639672),
    ("clip_l", "text_encoders", "clip_l.safetensors", 246144152),
    ("t5xxl", "text_encoders", "t5xxl_fp16.safetensors", 9787841024),
    ("vae", "vae", "ae.safetensors", 335304388),
    ("lora", "loras", "FLUX.1-Turbo-Alpha.safetensors", 694082424),
]


def write_model(path: Path, approx_size: int) -> tuple[int, str]:
    """A well-formed safetensors file of about ``approx_size`` bytes of random data; returns (size, sha256)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data_len = max(1, approx_size - 128)
    header = json.dumps({"w": {"dtype": "U8", "shape": [data_len], "data_offsets": [0, data_len]}}).encode()
    head = struct.pack("<Q", len(header)) + header
    sha = hashlib.sha256(head)
    with path.open("wb") as fh:
        fh.write(head)
        left = data_len
        while left:
            block = os.urandom(min(left, 64 << 20))
            fh.write(block)
            sha.update(block)
            left -= len(block)
    return len(head) + data_len, sha.hexdigest()


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True)
    return time.perf_counter() - start, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=4.0, help="total size of the files (default 4 GiB)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="fluxops-verify-bench-"))
    try:
        total_real = sum(s for *_, s in SHAPE)
        budget = int(args.gib * (1 << 30))
        lines = ["schema = 1", 'name = "bench"', ""]
        files = []
        print(f"writing {args.gib:.1f} GiB of model-shaped files to {root} ...", flush=True)
        for file_id, folder, name, real in SHAPE:
            path = root / "models" / folder / name
            size, digest = write_model(path, max(4096, real * budget // total_real))
            files.append(path)
            lines += ["[[file]]", f'id = "{file_id}"', f'folder = "{folder}"', f'filename = "{name}"',
                      f"size = {size}", f'sha256 = "{digest}"', "", "[[file.source]]", 'repo = "bench/bench"',
                      f'path = "{name}"', ""]
        manifest = root / "bench.toml"
        manifest.write_text("\n".join(lines), encoding="utf-8")
        total = sum(p.stat().st_size for p in files)
        subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

        env = dict(os.environ, FLUXOPS_STATE_DIR=str(root / "state"), PYTHONPATH=str(REPO))
        verify = [sys.executable, "-m", "fluxops", "verify", "--models-dir", str(root / "models"),
                  "--manifest", str(manifest), "--json"]
        results: list[tuple[str, float]] = []
        t, _ = timed(["sha256sum", *map(str, files)])
        results.append(("sha256sum (reference, one file at a time)", t))
        if shutil.which("openssl"):  # coreutils' sha256sum may lack SHA-NI; OpenSSL's (like hashlib's) uses it
            t, _ = timed(["openssl", "dgst", "-sha256", *map(str, files)])
            results.append(("openssl dgst -sha256 (one file at a time)", t))
        if shutil.which("b3sum"):
            t, _ = timed(["b3sum", *map(str, files)])
            results.append(("b3sum", t))
        t, proc = timed([*verify, "--full"], env)
        doc = json.loads(proc.stdout)
        assert doc["ok"], doc
        assert {f["checked_by"] for f in doc["data"]["files"]} == {"sha256"}
        results.append(("fluxops verify --full, first pass (sha256+blake3)", t))
        t, proc = timed([*verify, "--full"], env)
        doc = json.loads(proc.stdout)
        assert doc["ok"] and {f["checked_by"] for f in doc["data"]["files"]} == {"blake3"}, doc
        results.append(("fluxops verify --full, re-check (blake3)", t))
        cached = []
        for _ in range(5):
            t, proc = timed(verify, env)
            doc = json.loads(proc.stdout)
            assert doc["ok"] and {f["checked_by"] for f in doc["data"]["files"]} == {"cache"}
            cached.append(t)
        results.append(("fluxops verify, cached (median of 5 processes)", sorted(cached)[2]))
        t, _ = timed([sys.executable, "-c", "pass"])
        results.append(("python -c pass (interpreter start, for scale)", t))

        ref = results[0][1]
        print(f"\n{total / (1 << 30):.2f} GiB in {len(files)} files, {os.cpu_count()} CPUs, page cache warm\n")
        print(f"{'run':<55} {'seconds':>8} {'GiB/s':>7} {'x sha256sum':>12}")
        for name, secs in results:
            rate = total / (1 << 30) / secs
            print(f"{name:<55} {secs:8.3f} {rate:7.2f} {secs / ref:12.3f}")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
