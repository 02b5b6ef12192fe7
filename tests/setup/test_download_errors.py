"""Error paths of the segmented download that no network fault reached before: a worker thread's error handed
to the caller, a full disk while writing the part, bytes still missing when every connection has ended, and a
206 answer for a range other than the one asked for."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from fluxops.errors import FluxopsError
from fluxops.hub.client import Hub
from fluxops.hub.partial import PartPaths, resume_point
from fluxops.hub.rangedget import ByteSource
from fluxops.hub.segments import SegmentedDownload
from fluxops.models.manifest import Source
from tests.fakes.hub import FakeHub
from tests.helpers import fluxops_cmd, fluxops_env
from tests.setup.conftest import Scaled, make_safetensors

pytestmark = pytest.mark.network

SIZE = 1_000_000


def _engine(hub: FakeHub, tmp_path: Path, connections: int = 2, segment: int = 128 * 1024,
            engine: type[SegmentedDownload] = SegmentedDownload) -> SegmentedDownload:
    data = make_safetensors(tmp_path / "m.safetensors", SIZE, 21)
    entry = hub.add("org/model", "model.safetensors", data)
    client = Hub(hub.endpoint, None)
    remote = client.metadata(Source("org/model", "model.safetensors"))
    source = ByteSource(client, remote.location, lambda: client.metadata(remote.source).location)
    return engine(paths=PartPaths.for_sha(tmp_path / "models", entry.sha256), size=entry.size,
                  sha256=entry.sha256, source=source, connections=connections, segment_size=segment,
                  permits=threading.BoundedSemaphore(connections), stop=threading.Event())


def test_a_worker_threads_error_reaches_the_caller(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults.status_once = 400  # neither retryable nor an expired URL: the connection's error is final
    engine = _engine(hub, tmp_path)
    with pytest.raises(FluxopsError) as raised:
        engine.run()
    assert raised.value.code == "download.failed"
    assert raised.value.message == f"{hub.endpoint} answered HTTP 400 (Bad Request)"
    assert engine.paths.part.is_file() and engine.paths.state.is_file()  # what arrived is kept for a rerun


class _LosesASegment(SegmentedDownload):
    """A scheduler that forgets one segment (the bug the guard is for): every connection ends normally."""

    lost: tuple[int, int] | None = None

    def _take(self, index: int) -> tuple[int, int] | None:
        segment = super()._take(index)
        if segment is not None and self.lost is None:
            self.lost = segment
            return super()._take(index)
        return segment


def test_bytes_missing_when_every_connection_has_ended(hub: FakeHub, tmp_path: Path) -> None:
    engine = _engine(hub, tmp_path, engine=_LosesASegment)
    with pytest.raises(FluxopsError) as raised:
        engine.run()
    assert isinstance(engine, _LosesASegment) and engine.lost is not None
    start, end = engine.lost
    assert raised.value.code == "download.failed"
    assert raised.value.message == (f"{engine.paths.part}: the connections ended with {end - start} bytes still "
                                    "missing (kept for a rerun)")
    assert resume_point(tmp_path / "models", engine.sha256, SIZE) == start  # the bytes before the hole


def test_a_206_for_another_range_is_retried_not_written(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults.shift_range_once = 4096  # the next ranged answer starts 4 KiB later than asked, and says so
    engine = _engine(hub, tmp_path)
    fetched = engine.run()
    assert hub.faults.shift_range_once is None  # the lie was told
    data = (tmp_path / "m.safetensors").read_bytes()
    assert fetched.sha256 == hashlib.sha256(data).hexdigest()  # its bytes never landed at the asked offset


def test_a_206_from_a_file_of_another_size_is_refused(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults.total_size_once = SIZE + 1
    engine = _engine(hub, tmp_path)
    with pytest.raises(FluxopsError) as raised:
        engine.run()
    assert raised.value.code == "hub.upstream_changed"
    assert f"now serves a {SIZE + 1}-byte file, the manifest pins" in raised.value.message


def _user_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _user_namespaces(), reason="needs unprivileged user and mount namespaces (unshare -rm)")
def test_disk_full_while_writing_the_part(scaled: Scaled, tmp_path: Path) -> None:
    """A real full disk: `fluxops setup` runs in its own mount namespace where the partial folder is a 512 KiB
    tmpfs, so the models disk has room (the preflight passes) and the part runs out of it mid-download."""
    partial = scaled.models / ".fluxops-partial"
    partial.mkdir()
    mount_then_run = 'mount -t tmpfs -o size=512k fluxops-test "$0" && exec "$@"'
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount_then_run,
                           str(partial), *fluxops_cmd("setup", "--json")], capture_output=True, text=True,
                          env=fluxops_env(scaled.env(FLUXOPS_JOBS="1")), timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    files = {f["id"]: f for f in json.loads(proc.stdout)["data"]["files"]}
    lora = files["lora"]  # the largest, fetched first: the disk fills up under it
    assert lora["action"] == "failed" and lora["fetched"] > 0, lora
    assert lora["error"]["code"] == "setup.disk_full", lora["error"]
    assert "filled up" in lora["error"]["message"] and "free at least" in lora["error"]["message"]
    assert "free some space on the models disk" in lora["error"]["hint"]
    # the files after it find the disk full before their first byte, and say so the same way
    assert {f["error"]["code"] for f in files.values()} == {"setup.disk_full"}
