"""Benchmark `generate --cluster` on 1, 2 and 4 simulated GPUs: one local Ray node declaring N GPUs it does not
have (Ray schedules `num_gpus=1` actors on them all the same), each worker with its own fake ComfyUI that takes a
fixed time per image (FAKE_COMFYUI_SECONDS_PER_IMAGE).

Run: python benchmarks/cluster_bench.py [--seconds-per-image 1.0] [--jobs-per-gpu 8] [--gpus 1 2 4]
Prints, from one run:
- throughput for each N, and its ratio to N x one worker's (the N=1 figure). A worker's throughput is its jobs
  over its busy window (the driver's first dispatch to it .. the driver receiving its last result), so the
  ComfyUI start-up, which happens once per worker, is left out; the cluster's is the sum over its workers;
- dispatch overhead per job: a worker's busy window minus its jobs x the fixed time, per job (what the queue,
  Ray, the HTTP and WebSocket round trips and handing the PNG back cost on top of the GPU's time);
- the time from the command's start (`generate_on_cluster` called against the already started Ray node) to the
  first image written.
Targets (issue 12): 4 GPUs give at least 0.95 x 4 x one worker's throughput; overhead under 20 ms per job.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the driver finds the 127.0.0.1 head
os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")  # Ray's workers too

from fluxops.cluster.dispatch import ClusterResult, generate_on_cluster  # noqa: E402
from fluxops.cluster.workload import Entry  # noqa: E402
from fluxops.generate.workflow import Overrides  # noqa: E402
from fluxops.settings import load_settings  # noqa: E402
from tests.fakes.comfyui.install import make_comfyui_dir  # noqa: E402


def run_once(gpus: int, jobs: int, seconds: float, work: Path) -> tuple[ClusterResult, float]:
    from ray.cluster_utils import Cluster

    os.environ["FAKE_COMFYUI_SECONDS_PER_IMAGE"] = str(seconds)  # inherited by the node, its workers, servers
    cluster = Cluster(initialize_head=True, head_node_args={"num_gpus": gpus, "num_cpus": gpus + 1,
                                                            "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    try:
        settings = load_settings({"comfyui_dir": make_comfyui_dir(work / "ComfyUI"), "output_dir": work / "out"},
                                 env={"FLUXOPS_STATE_DIR": str(work / "state")})
        entries = [Entry(0, Overrides(prompt="benchmark: a glass of water on a table"), seed=1, count=jobs)]
        began = time.monotonic()
        result = generate_on_cluster(settings, cluster.address, entries, None, [], max_retries=0)
        return result, began
    finally:
        cluster.shutdown()


def figures(result: ClusterResult, seconds: float) -> dict[str, float]:
    by_worker: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in result.timeline:
        by_worker[entry["worker"]].append(entry)
    throughput, overheads = 0.0, []
    for entries in by_worker.values():
        window = max(e["returned"] for e in entries) - min(e["dispatched"] for e in entries)
        throughput += len(entries) / window
        overheads.append((window - len(entries) * seconds) / len(entries))
    return {"throughput": throughput, "overhead": sum(overheads) / len(overheads), "done": result.totals()["done"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-per-image", type=float, default=1.0)
    parser.add_argument("--jobs-per-gpu", type=int, default=8)
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fluxops-cluster-bench-") as tmp:
        for gpus in args.gpus:
            result, began = run_once(gpus, gpus * args.jobs_per_gpu, args.seconds_per_image, Path(tmp) / str(gpus))
            row = figures(result, args.seconds_per_image)
            row["first_image"] = (result.first_image_at or float("nan")) - began
            rows.append((gpus, row))
    one = next((row["throughput"] for gpus, row in rows if gpus == 1), None)
    print(f"fake ComfyUI at {args.seconds_per_image:g} s/image, {args.jobs_per_gpu} jobs per GPU")
    print(f"{'GPUs':>4}  {'done':>4}  {'images/min':>10}  {'vs N x one':>10}  {'overhead/job':>12}  "
          f"{'first image':>11}")
    for gpus, row in rows:
        ratio = f"{row['throughput'] / (gpus * one):.3f}" if one else "n/a"
        print(f"{gpus:>4}  {row['done']:>4.0f}  {60 * row['throughput']:>10.2f}  {ratio:>10}  "
              f"{1000 * row['overhead']:>9.1f} ms  {row['first_image']:>9.2f} s")
    print("targets: 4 GPUs >= 0.95 x 4 x one worker's throughput; overhead < 20 ms per job")


if __name__ == "__main__":
    main()
