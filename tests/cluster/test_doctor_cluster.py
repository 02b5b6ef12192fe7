"""`fluxops doctor --cluster` through the real CLI against a real two-node Ray cluster with the fake NVML and the
fake Hub; the fleet checks (versions, a models dir on a network file system) also directly."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fluxops.cluster.nodecheck import Partition, check_gpus, check_models_fs, check_versions, is_network_fs, mount_of
from fluxops.doctor.result import Status
from tests.cluster.nodes import cluster_of, processes_of
from tests.fakes.nvml_seam import nvml_env
from tests.helpers import REPO, run_fluxops, wait_until
from tests.setup.conftest import Scaled, hub, scaled  # noqa: F401 (fixtures)

CHECKS = ("python", "system.disk", "gpu.driver", "gpu.devices", "models")


def _doctor(address: str, *args: str) -> tuple[int, dict, str]:
    proc = run_fluxops("doctor", "--cluster", "--ray-address", address, *CHECKS, *args, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout) if "--json" in args else {}, proc.stdout


def test_one_section_per_node_and_exit_1_until_every_node_has_its_models(scaled: Scaled,  # noqa: F811
                                                                         tmp_path: Path) -> None:
    own = tmp_path / "models-own"
    base = {**scaled.env(), **nvml_env("clean_3090")}
    node_env = {"FLUXOPS_MODELS_DIR": str(own), "FLUXOPS_STATE_DIR": str(tmp_path / "state-own")}
    with cluster_of(base, node_env, gpus=1) as rc:  # clean_3090: one GPU per node
        code, doc, _ = _doctor(rc.address, "--json")
        assert code == 1 and doc["ok"] is False
        nodes = doc["data"]["nodes"]
        assert len(nodes) == 2 and all(set(n) >= {"node", "node_id", "ip", "gpus", "ok", "error", "result"}
                                       for n in nodes)
        for node in nodes:
            by_id = {c["id"]: c for c in node["result"]["checks"]}
            assert list(by_id) == ["cluster.versions", "cluster.gpus", "cluster.models_fs", *CHECKS]
            assert by_id["cluster.versions"]["status"] == "ok" and by_id["gpu.driver"]["status"] == "ok"
            assert by_id["cluster.gpus"]["status"] == "ok" and by_id["cluster.gpus"]["facts"]["ray_gpus"] == 1
            assert by_id["models"]["status"] == "fail" and not node["ok"]
            assert by_id["cluster.models_fs"]["status"] == "ok"
        assert {n["result"]["checks"][2]["facts"]["path"] for n in nodes} == {str(scaled.models), str(tmp_path)}

        assert run_fluxops("setup", "--cluster", "--ray-address", rc.address, timeout=120).returncode == 0
        code, _, text = _doctor(rc.address, "-v")
        assert code == 0, text
        # one line per GPU in each node's section
        assert len(re.findall(r"• GPU 0: NVIDIA GeForce RTX 3090, [\d.]+ GiB free of", text)) == 2, text
        assert text.count("Node ") == 2 and "2 of 2 node(s) passed" in text
        assert "RTX 3090" in text and "(cluster.versions)" in text
    # Ray ends a finished driver's actors (the progress queue among them) a moment after it exits.
    wait_until(lambda: processes_of(tmp_path) == [], timeout=30, what="every Ray worker of the command gone")


def test_versions_must_equal_the_drivers() -> None:
    driver = {"fluxops": "0.9.0", "python": "3.11.9", "ray": "2.60.0"}
    assert check_versions(driver, driver).status is Status.OK
    result = check_versions({**driver, "ray": "2.59.1"}, driver)
    assert result.status is Status.FAIL and "ray 2.59.1 here, 2.60.0 on the driver" in result.summary
    assert result.fix is not None and '"ray==2.60.0"' in result.fix


def test_ray_offering_more_gpus_than_the_driver_sees_fails() -> None:
    from fluxops.machine.gpu import GpuDevice, GpuProbe

    gpu = GpuDevice(0, "NVIDIA RTX A6000", "GPU-1", None, None, 48 * 2**30, 2**30, 47 * 2**30)
    probe = GpuProbe(loaded=True, driver_version="570.124.06", devices=(gpu,))
    assert check_gpus(1, probe).status is Status.OK and check_gpus(0, probe).summary.startswith("Ray offers 0 of 1")
    result = check_gpus(2, probe)
    assert result.status is Status.FAIL and "--num-gpus=1" in (result.fix or "")
    assert result.details == ("GPU 0: NVIDIA RTX A6000, 47.0 GiB free of 48.0 GiB",)
    assert check_gpus(2, GpuProbe(loaded=False)).status is Status.SKIP


def test_network_file_systems_are_a_warning(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    mounts = [Partition("/", "ext4"), Partition(str(tmp_path), "nfs4"), Partition(str(tmp_path) + "x", "ext4")]
    result = check_models_fs(models, mounts)
    assert result.status is Status.WARN and "nfs4" in result.summary and result.facts["mountpoint"] == str(tmp_path)
    assert check_models_fs(models, [Partition("/", "xfs")]).status is Status.OK
    assert mount_of(Path("/data/models"), [Partition("/", "ext4"), Partition("/dat", "nfs")]) == Partition("/", "ext4")
    for kind in ("nfs", "NFS4", "cifs", "smb3", "fuse.sshfs", "sshfs", "ceph", "glusterfs", "9p", "fuse"):
        assert is_network_fs(kind), kind
    for kind in ("ext4", "xfs", "btrfs", "zfs", "tmpfs", "overlay", "fuseblk", "apfs", "ntfs"):
        assert not is_network_fs(kind), kind


def test_setup_and_doctor_without_cluster_never_import_ray(tmp_path: Path) -> None:
    code = ("import sys\nfrom fluxops.cli import app\n"
            "for args in (['setup', '--help'], ['doctor', '--help'], ['doctor', '--list']):\n"
            "    try:\n        app(args, prog_name='fluxops')\n    except SystemExit:\n        pass\n"
            "print('ray' in sys.modules, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert proc.stderr.strip().splitlines()[-1] == "False", proc.stderr
    assert "--cluster" in proc.stdout and "--ray-address" in proc.stdout


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has NVIDIA GPUs for a local Ray")
def test_without_an_address_a_local_ray_is_started_for_the_command(isolated: dict[str, str],
                                                                    tmp_path: Path) -> None:
    proc = run_fluxops("doctor", "--cluster", "models", "--json", env={"RAY_ADDRESS": ""}, timeout=120,
                       cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["error"]["code"] == "cluster.no_gpus", proc.stderr
    assert "no alive node of the Ray cluster has a GPU" in proc.stderr and "Traceback" not in proc.stderr
    wait_until(lambda: processes_of(tmp_path) == [], timeout=30, what="the command's local Ray to stop")
