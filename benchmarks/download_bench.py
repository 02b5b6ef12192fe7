"""Download throughput of `fluxops setup` vs `hf download` vs a raw single-stream HTTP read, on loopback.

Serves generated safetensors files from the fake Hub (tests/fakes/hub.py: real HTTP, the resolve URL
redirects to a second "CDN" port, like the real Hub) and runs each tool as its own process, measuring wall
time and peak memory (the child's ru_maxrss). Prints, from one run:

  A. uncapped loopback, one ~2 GiB file: raw read, hf download, fluxops setup (8 connections);
     then fluxops killed (SIGKILL) half-way and rerun: the bytes the rerun transferred vs what was missing;
  B. each connection capped at 20 MiB/s like a CDN edge, one ~1 GiB file: raw read, hf download,
     fluxops with 1 connection and with 8 connections.

Everything lives in a temporary directory removed at the end. Usage:
    python benchmarks/download_bench.py [--size-mib 2000] [--capped-mib 1000] [--cap-mib 20]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fluxops.hub.partial import resume_point  # noqa: E402
from tests.fakes.hub import FakeHub  # noqa: E402

MiB = 1024 * 1024
REPO_ID = "bench/flux"
RAW_READ = """
import sys, requests
resp = requests.get(sys.argv[1], stream=True, headers={"Accept-Encoding": "identity"})
resp.raise_for_status()
total = 0
while chunk := resp.raw.read(1 << 20):
    total += len(chunk)
assert total == int(sys.argv[2]), total
"""


def write_safetensors(path: Path, data_bytes: int) -> str:
    """A well-formed safetensors file of one U8 tensor, streamed to disk; returns its sha256."""
    import json
    import struct

    header = json.dumps({"w": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}}).encode()
    header += b" " * (-len(header) % 8)
    sha = hashlib.sha256()
    block = os.urandom(16 * MiB)
    with path.open("wb") as fh:
        head = struct.pack("<Q", len(header)) + header
        fh.write(head)
        sha.update(head)
        left = data_bytes
        while left:
            chunk = block[: min(left, len(block))]
            fh.write(chunk)
            sha.update(chunk)
            left -= len(chunk)
            block = block[1:] + block[:1]  # no two blocks alike
    return sha.hexdigest()


@dataclass
class Run:
    name: str
    seconds: float
    size: int
    peak_rss: int  # bytes

    @property
    def mib_s(self) -> float:
        return self.size / MiB / self.seconds


def peak_rss(pid: int) -> int | None:
    """The process's peak resident memory so far (VmHWM). ru_maxrss would not do: after fork it counts
    the parent's pages too."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_child(cmd: list[str], env: dict[str, str], kill_when=None) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit status) of one child process; kill -9 when kill_when() is true."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err_file)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, peak_rss(proc.pid) or 0)
            if kill_when is not None and kill_when():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.002 if kill_when is not None else 0.01)
        seconds = time.perf_counter() - started
        if proc.returncode not in (0, -signal.SIGKILL):
            err_file.seek(0)
            raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}):\n{err_file.read().decode()[-3000:]}")
    return seconds, peak, proc.returncode


class Bench:
    def __init__(self, root: Path, hub: FakeHub):
        self.root, self.hub = root, hub
        self.base_env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(root / "hf-home"),
                         "HF_HUB_DISABLE_TELEMETRY": "1", "NO_PROXY": "127.0.0.1,localhost",
                         "FLUXOPS_STATE_DIR": str(root / "state"), "PYTHONPATH": str(REPO),
                         "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_XET_HIGH_PERFORMANCE": "0"}
        for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "FLUXOPS_CONNECTIONS", "FLUXOPS_SEGMENT_SIZE"):
            self.base_env.pop(key, None)

    def add_file(self, name: str, mib: int) -> tuple[Path, str]:
        path = self.root / "served" / name
        sha = write_safetensors(path, mib * MiB - 128)
        self.hub.add(REPO_ID, name, path, sha256=sha, cdn=True)
        return path, sha

    def manifest(self, name: str, path: Path, sha: str) -> Path:
        out = self.root / f"{name}.toml"
        out.write_text(f'schema = 1\nname = "bench"\n[[file]]\nid = "model"\nfolder = "diffusion_models"\n'
                       f'filename = "{name}"\nsize = {path.stat().st_size}\nsha256 = "{sha}"\n'
                       f'[[file.source]]\nrepo = "{REPO_ID}"\npath = "{name}"\n')
        return out

    def raw(self, name: str, size: int) -> Run:
        url = f"{self.hub.endpoint}/{REPO_ID}/resolve/main/{name}"
        seconds, rss, _ = run_child([sys.executable, "-c", RAW_READ, url, str(size)], self.base_env)
        return Run("raw single-stream read", seconds, size, rss)

    def hf(self, name: str, size: int) -> Run:
        out = self.root / "hf-out"
        seconds, rss, _ = run_child([str(Path(sys.executable).with_name("hf")), "download", REPO_ID, name,
                                     "--local-dir", str(out)], self.base_env)
        got = out / name
        assert got.stat().st_size == size, "hf download produced a wrong size"
        shutil.rmtree(out)
        shutil.rmtree(self.root / "hf-home", ignore_errors=True)
        return Run("hf download", seconds, size, rss)

    def fluxops(self, manifest: Path, size: int, connections: int, kill_when=None, keep: bool = False) -> Run:
        models = self.root / "models"
        env = {**self.base_env, "FLUXOPS_MODELS_DIR": str(models), "FLUXOPS_MANIFEST": str(manifest),
               "FLUXOPS_CONNECTIONS": str(connections)}
        seconds, rss, code = run_child([sys.executable, "-m", "fluxops", "setup"], env, kill_when)
        if code == 0 and not keep:
            shutil.rmtree(models)
            shutil.rmtree(self.root / "state", ignore_errors=True)
        return Run(f"fluxops setup ({connections} conn)", seconds, size, rss)


def table(runs: list[Run], reference: Run) -> None:
    print(f"  {'tool':<28}{'wall s':>9}{'MiB/s':>10}{'vs raw':>9}{'peak RSS MiB':>14}")
    for run in runs:
        print(f"  {run.name:<28}{run.seconds:>9.2f}{run.mib_s:>10.1f}{run.mib_s / reference.mib_s:>8.2f}x"
              f"{run.peak_rss / MiB:>14.1f}")


def uncapped(bench: Bench, mib: int) -> None:
    path, sha = bench.add_file("uncapped.safetensors", mib)
    size = path.stat().st_size
    manifest = bench.manifest("uncapped.safetensors", path, sha)
    print(f"\nA. uncapped loopback, one {size / MiB:.0f} MiB file (resolve -> CDN redirect)")
    raw = bench.raw(path.name, size)
    hf = bench.hf(path.name, size)
    flux = bench.fluxops(manifest, size, 8)
    table([raw, hf, flux], raw)
    print(f"  fluxops / hf download throughput: {flux.mib_s / hf.mib_s:.2f}x (target >= 1.0x)")

    resume_after_kill(bench, manifest, sha, size)
    path.unlink()


def bytes_in_socket_buffers(port: int) -> int:
    """Bytes sent by the server on `port` that the client has not read yet: the server sockets' send queues
    plus the client sockets' receive queues (/proc/net/tcp; Linux)."""
    total = 0
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        tx, rx = (int(v, 16) for v in fields[4].split(":"))
        if local == port:
            total += tx
        elif remote == port:
            total += rx
    return total


def resume_after_kill(bench: Bench, manifest: Path, sha: str, size: int) -> None:
    before = bench.hub.served.bytes
    at_kill: list[int] = []
    buffered: list[int] = []
    cdn_port = bench.hub.cdn.server_address[1]

    def half_way() -> bool:
        served = bench.hub.served.bytes - before
        if served >= size // 2 and not at_kill:
            buffered.append(bytes_in_socket_buffers(cdn_port))
            at_kill.append(bench.hub.served.bytes - before)
        return bool(at_kill)

    bench.fluxops(manifest, size, 8, kill_when=half_way, keep=True)
    time.sleep(0.3)  # let the server notice the dead connections
    first = bench.hub.served.bytes - before
    kept = resume_point(bench.root / "models", sha, size)
    rerun = bench.fluxops(manifest, size, 8)
    second = bench.hub.served.bytes - before - first
    received = at_kill[0] - buffered[0]
    print(f"  resume: fluxops killed (SIGKILL) when the Hub had sent {at_kill[0] / MiB:.1f} MiB, of which "
          f"{buffered[0] / MiB:.1f} MiB still sat in kernel socket buffers (so fluxops had received "
          f"{received / MiB:.1f} MiB); the partial kept {kept / MiB:.1f} MiB "
          f"(lost to the kill: {(received - kept) / MiB:.1f} MiB)")
    print(f"  the rerun transferred {second / MiB:.1f} MiB in {rerun.seconds:.2f} s: "
          f"{(second - (size - received)) / MiB:+.1f} MiB beyond what fluxops still lacked at the kill "
          f"(target <= +16 MiB); {(second - (size - at_kill[0])) / MiB:+.1f} MiB beyond the server-side count; "
          f"{(second - (size - kept)) / MiB:+.1f} MiB beyond what the partial lacked")


def capped(bench: Bench, mib: int, cap_mib: int) -> None:
    path, sha = bench.add_file("capped.safetensors", mib)
    size = path.stat().st_size
    manifest = bench.manifest("capped.safetensors", path, sha)
    bench.hub.faults.rate = cap_mib * MiB
    print(f"\nB. {cap_mib} MiB/s per connection (like a CDN edge), one {size / MiB:.0f} MiB file")
    raw = bench.raw(path.name, size)
    hf = bench.hf(path.name, size)
    single = bench.fluxops(manifest, size, 1)
    multi = bench.fluxops(manifest, size, 8)
    table([raw, hf, single, multi], raw)
    print(f"  segmented (8) / single-stream (1): {multi.mib_s / single.mib_s:.2f}x (target >= 6x); "
          f"segmented / hf download: {multi.mib_s / hf.mib_s:.2f}x (target >= 1x); "
          f"peak RSS {multi.peak_rss / MiB:.0f} MiB (target < 256 MiB)")
    resume_after_kill(bench, manifest, sha, size)
    bench.hub.faults.rate = None
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2000, help="uncapped file size")
    parser.add_argument("--capped-mib", type=int, default=1000, help="capped file size")
    parser.add_argument("--cap-mib", type=int, default=20, help="per-connection cap in MiB/s")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fluxops-bench-"))
    (root / "served").mkdir()
    hub = FakeHub()
    started = time.perf_counter()
    try:
        print(f"download_bench: python {sys.version.split()[0]}, {os.cpu_count()} cores, files in {root}")
        uncapped(Bench(root, hub), args.size_mib)
        capped(Bench(root, hub), args.capped_mib, args.cap_mib)
    finally:
        hub.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
