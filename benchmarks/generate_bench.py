"""Benchmark `fluxops generate` against the fake ComfyUI set to take a fixed time per image.

Run: python benchmarks/generate_bench.py [--seconds-per-image 0.5] [--count 20] [--repeats 5]
Prints, from one run against one fake server (1024x1024 PNGs, production graph):
- the server's capacity: 1 / the fixed time per image (FAKE_COMFYUI_SECONDS_PER_IMAGE), and the time the
  server itself reported busy per image (execution_start .. execution_success in /history);
- client overhead per image: the core runner's wall time for one image (WebSocket connect, POST, follow,
  /history, /view, writing the PNG and sidecar) minus the server's busy time, median of --repeats runs;
- `fluxops generate --count N` as a real process: throughput as a ratio to the server's capacity, measured
  from the first submission to the last saved image, and end to end including Python start-up.
Targets (issue 5): overhead under 50 ms per image; --count 20 at least 95% of capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fluxops.comfy.client import ComfyClient  # noqa: E402
from fluxops.generate.plan import GenerateRequest, plan  # noqa: E402
from fluxops.generate.runner import RunContext, Runner  # noqa: E402
from fluxops.settings import packaged_manifest  # noqa: E402
from tests.fakes.comfyui.install import make_comfyui_dir  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_fake(root: Path, port: int, seconds_per_image: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FAKE_COMFYUI_SECONDS_PER_IMAGE": str(seconds_per_image)}
    proc = subprocess.Popen([sys.executable, str(root / "main.py"), "--listen", "127.0.0.1", "--port", str(port)],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the fake ComfyUI did not start")


def server_busy(client: ComfyClient, prompt_id: str) -> float:
    entry = client.history(prompt_id)[prompt_id]
    stamps = {name: data["timestamp"] for name, data in entry["status"]["messages"]}
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000


def one_image(client: ComfyClient, out: Path, seed: int) -> tuple[float, float]:
    """(client wall seconds, server busy seconds) for one image through the core runner."""
    the_plan = plan(GenerateRequest(seed=seed), packaged_manifest())
    ctx = RunContext(workflow=the_plan.workflow, models={}, output_dir=out,
                     server={"url": client.base_url, "comfyui_version": None})
    began = time.perf_counter()
    Runner(client, the_plan.jobs, ctx).run()
    wall = time.perf_counter() - began
    return wall, server_busy(client, the_plan.jobs[0].prompt_id)


def count_run(port: int, out: Path, count: int) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fluxops", "generate", "--port", str(port), "--count", str(count),
                           "--seed", "1000", "--output", str(out), "--json"], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"fluxops generate failed:\n{proc.stderr}")
    return wall, json.loads(proc.stdout)["data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds-per-image", type=float, default=0.5)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    t = args.seconds_per_image
    with tempfile.TemporaryDirectory(prefix="fluxops-genbench-") as tmp:
        root = make_comfyui_dir(Path(tmp) / "ComfyUI")
        port = free_port()
        proc = start_fake(root, port, t)
        try:
            client = ComfyClient(f"http://127.0.0.1:{port}")
            one_image(client, Path(tmp) / "warmup", seed=1)  # loaders cached, like a warm server
            samples = [one_image(client, Path(tmp) / "single", seed=10 + i) for i in range(args.repeats)]
            wall, data = count_run(port, Path(tmp) / "count", args.count)
            busy = [server_busy(client, job["prompt_id"]) for job in data["jobs"]]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    overheads = [w - b for w, b in samples]
    in_run = data["seconds"]
    capacity = 1 / t
    print(f"fake ComfyUI: {t:.3f} s per image (capacity {capacity * 60:.1f} images/min); server busy per image "
          f"{statistics.median(busy):.3f} s (median of {len(busy)})")
    print(f"client overhead per image: {statistics.median(overheads) * 1000:.1f} ms median "
          f"(min {min(overheads) * 1000:.1f}, max {max(overheads) * 1000:.1f}; {args.repeats} single-image runs, "
          f"1024x1024 PNG + sidecar)  target < 50 ms")
    print(f"--count {args.count}: {in_run:.2f} s from first submission to last image saved = "
          f"{args.count / in_run * 60:.1f} images/min = {args.count * t / in_run:.1%} of server capacity  "
          f"target >= 95%")
    print(f"--count {args.count} end to end (process start-up included): {wall:.2f} s = "
          f"{args.count * t / wall:.1%} of server capacity")
    print(f"measured {datetime.now().isoformat(timespec='seconds')} on {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}")


if __name__ == "__main__":
    main()
