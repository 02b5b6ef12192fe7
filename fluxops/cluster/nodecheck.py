"""`fluxops doctor --cluster`: doctor's own checks run ON every GPU node, plus the checks only a fleet needs.

The fleet checks: the node's fluxops, Python and Ray versions against the driver's (Ray refuses, or misbehaves
across, mismatched versions: https://docs.ray.io/en/latest/ray-core/configure.html), the GPUs Ray offers there
against those the driver sees (one line per GPU), and whether the node's models dir is on a network file system
(ComfyUI loads models by mmap, which is many times slower there).
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from fluxops import __version__
from fluxops.cluster.pernode import NodeCall, NodeRow, Progress, node_settings, on_each_node
from fluxops.cluster.runtime import gpu_nodes
from fluxops.doctor.context import DoctorOptions
from fluxops.doctor.result import CheckResult, DoctorReport, fail, ok, skip, warn
from fluxops.machine.gpu import GpuProbe
from fluxops.settings import Settings
from fluxops.units import gib

GROUP = "Cluster"
# Checks about one machine's own ComfyUI server and the Hub token: a fleet's workers pick free ports and use the
# driver's token, so a node's answer would mislead. They still run on the nodes when named.
NOT_BY_DEFAULT = ("comfyui.port", "comfyui.nodes", "token")
# psutil's fstype for file systems reached over the network (Linux names; `fuse.*` covers sshfs, s3fs, gcsfuse...).
NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smbfs", "smb3", "sshfs", "ceph", "cephfs", "glusterfs", "9p",
                        "lustre", "gpfs", "beegfs", "afs", "davfs", "virtiofs"})
NETWORK_FS_PREFIXES = ("fuse.", "smb", "nfs")
LOCAL_FUSE = frozenset({"fuseblk"})  # ntfs-3g and exfat-fuse on a local disk


@dataclass(frozen=True)
class Partition:
    mountpoint: str
    fstype: str


def versions(ray_version: str) -> dict[str, str]:
    """What must be equal on the driver and every node."""
    return {"fluxops": __version__, "python": platform.python_version(), "ray": ray_version}


def check_versions(mine: Mapping[str, str], driver: Mapping[str, str]) -> CheckResult:
    differ = [f"{name} {mine.get(name)} here, {want} on the driver" for name, want in driver.items()
              if mine.get(name) != want]
    facts = {"node": dict(mine), "driver": dict(driver)}
    if not differ:
        return ok("cluster.versions", "fluxops {fluxops}, Python {python}, Ray {ray}: the same as the "
                  "driver's".format(**mine), **facts)
    return fail("cluster.versions", "versions differ from the driver's: " + "; ".join(differ),
                f'install the driver\'s versions on this node: Python {driver.get("python")}, then '
                f'pip install "fluxops[cluster]=={driver.get("fluxops")}" "ray=={driver.get("ray")}"',
                differ, **facts)


def check_gpus(ray_gpus: int, probe: GpuProbe) -> CheckResult:
    """The GPUs Ray offers on this node against those the driver sees, one detail line per GPU: a worker given a
    GPU that is not there would start ComfyUI on nothing."""
    if not probe.loaded:
        return skip("cluster.gpus", f"Ray offers {ray_gpus} GPU(s) here; the driver did not answer (gpu.driver)")
    devices = probe.devices
    details = [f"GPU {d.index}: {d.name}, {gib(d.memory_free)} free of {gib(d.memory_total)}" for d in devices]
    facts = {"ray_gpus": ray_gpus, "devices": len(devices)}
    if ray_gpus > len(devices):
        return fail("cluster.gpus", f"Ray offers {ray_gpus} GPU(s) on this node, the driver sees {len(devices)}",
                    f"restart Ray on this node with --num-gpus={len(devices)} (or without it: Ray counts them)",
                    details, **facts)
    used = f"Ray offers {ray_gpus} of {len(devices)} GPU(s)" if ray_gpus < len(devices) else \
        f"{len(devices)} GPU(s), all offered to Ray"
    return ok("cluster.gpus", used, details, **facts)


def mount_of(path: Path, partitions: Iterable[Partition]) -> Partition | None:
    """The partition that holds `path`: the longest mountpoint that is `path` or one of its parents."""
    best: Partition | None = None
    for part in partitions:
        mount = Path(part.mountpoint)
        if (path == mount or mount in path.parents) and (best is None or len(part.mountpoint) >
                                                         len(best.mountpoint)):
            best = part
    return best


def is_network_fs(fstype: str) -> bool:
    kind = fstype.lower()
    return kind not in LOCAL_FUSE and (kind in NETWORK_FS or kind == "fuse" or kind.startswith(NETWORK_FS_PREFIXES))


def check_models_fs(models_dir: Path | None, partitions: Sequence[Partition]) -> CheckResult:
    if models_dir is None:
        return skip("cluster.models_fs", "no models dir on this node", "set FLUXOPS_MODELS_DIR on the node")
    place = _existing(models_dir.resolve())
    part = mount_of(place, partitions)
    if part is None:
        return ok("cluster.models_fs", f"{models_dir}: file system not found among the mounts", path=str(place))
    facts = {"path": str(place), "mountpoint": part.mountpoint, "fstype": part.fstype}
    if is_network_fs(part.fstype):
        return warn("cluster.models_fs", f"{models_dir} is on a network file system ({part.fstype} at "
                    f"{part.mountpoint}): ComfyUI loads models by mmap, many times slower there",
                    "give each node a models dir on its local disk (fluxops setup --cluster fills every one)",
                    **facts)
    return ok("cluster.models_fs", f"{models_dir} is on a local file system ({part.fstype})", **facts)


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def partitions() -> list[Partition]:
    import psutil

    return [Partition(p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=True)]


def default_checks(names: Sequence[str]) -> list[str]:
    """The doctor checks a node runs: those named, else all but the ones about this machine's own server."""
    from fluxops.doctor import CHECK_IDS

    return list(names) if names else [c for c in CHECK_IDS if c not in NOT_BY_DEFAULT]


def ray_gpus_here(ray: ModuleType) -> int:
    here = ray.get_runtime_context().get_node_id()
    entry: dict[str, Any] = next((n for n in ray.nodes() if n.get("NodeID") == here), {})
    return int((entry.get("Resources") or {}).get("GPU", 0))


def fleet_checks(settings: Settings, driver: Mapping[str, str]) -> list[CheckResult]:
    import ray

    from fluxops.machine.gpu import probe_gpus

    found = [check_versions(versions(ray.__version__), driver), check_gpus(ray_gpus_here(ray), probe_gpus()),
             check_models_fs(settings.models_dir, partitions())]
    return [dataclasses.replace(result, group=GROUP) for result in found]


def doctor_on_node(progress: Progress, call: NodeCall, options: DoctorOptions, names: Sequence[str],
                   driver: Mapping[str, str], strict: bool) -> dict[str, Any]:
    """Run ON a node: this node's Settings and environment, doctor's checks and the fleet's; the report as data."""
    from fluxops.doctor import run_doctor

    settings = node_settings(call)
    local = run_doctor(settings, options, dict(os.environ), default_checks(names), strict=strict)
    report = DoctorReport(tuple(fleet_checks(settings, driver)) + local.checks, strict=strict,
                          seconds=local.seconds)
    progress.say(f"{report.counts()['fail']} failed, {report.counts()['warn']} warning(s)")
    return report.to_dict()


def doctor_cluster(ray: ModuleType, call: NodeCall, options: DoctorOptions, names: Sequence[str],
                   strict: bool) -> list[NodeRow]:
    driver = versions(str(ray.__version__))
    return on_each_node(ray, gpu_nodes(ray), doctor_on_node, call, options, list(names), driver, strict)
