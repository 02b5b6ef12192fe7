"""The segment engine in-process over real loopback HTTP: tail splitting, stealing from a stalled
connection, the global connection cap, and what a stop leaves on disk."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from fluxops.hub import segments
from fluxops.hub.client import Hub
from fluxops.hub.partial import PartPaths, resume_point
from fluxops.hub.rangedget import ByteSource
from fluxops.hub.segments import DownloadStopped, SegmentedDownload
from fluxops.models.manifest import Source
from tests.fakes.hub import FakeHub
from tests.setup.conftest import make_safetensors

pytestmark = pytest.mark.network


def _engine(hub: FakeHub, tmp_path: Path, data: Path, connections: int, segment: int,
            stop: threading.Event | None = None) -> SegmentedDownload:
    entry = hub.add("org/model", "model.safetensors", data, cdn=True)
    client = Hub(hub.endpoint, None)
    remote = client.metadata(Source("org/model", "model.safetensors"))
    source = ByteSource(client, remote.location, lambda: client.metadata(remote.source).location)
    return SegmentedDownload(paths=PartPaths.for_sha(tmp_path / "models", entry.sha256), size=entry.size,
                             sha256=entry.sha256, source=source, connections=connections,
                             segment_size=segment, permits=threading.BoundedSemaphore(connections),
                             stop=stop or threading.Event())


@pytest.fixture
def small_steal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "MIN_STEAL", 64 * 1024)
    monkeypatch.setattr(segments, "STEAL_AFTER_SECONDS", 0.2)


def test_tail_is_split_so_every_connection_works(hub: FakeHub, tmp_path: Path, small_steal: None) -> None:
    data = make_safetensors(tmp_path / "m.safetensors", 1_000_000, 7)
    engine = _engine(hub, tmp_path, data, connections=4, segment=4 * 1024 * 1024)
    fetched = engine.run()
    assert fetched.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    assert hub.served.gets >= 4  # one segment became several requests
    assert hub.served.bytes == data.stat().st_size  # halving the tail wastes nothing


def test_a_stalled_connection_has_its_segment_taken_over(hub: FakeHub, tmp_path: Path,
                                                         small_steal: None) -> None:
    data = make_safetensors(tmp_path / "m.safetensors", 1_000_000, 8)
    hub.faults.rate = 2_000_000
    hub.faults.status_once = 503
    hub.faults.retry_after = "2"  # the first connection waits 2 s; the other finishes and steals
    engine = _engine(hub, tmp_path, data, connections=2, segment=4 * 1024 * 1024)
    fetched = engine.run()
    assert fetched.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    assert engine.steals >= 1


def test_stop_keeps_what_arrived_and_a_new_engine_resumes(hub: FakeHub, tmp_path: Path) -> None:
    data = make_safetensors(tmp_path / "m.safetensors", 1_500_000, 9)
    hub.faults.rate = 600_000
    stop = threading.Event()
    engine = _engine(hub, tmp_path, data, connections=2, segment=128 * 1024, stop=stop)
    threading.Timer(1.0, stop.set).start()
    with pytest.raises(DownloadStopped):
        engine.run()
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    kept = resume_point(tmp_path / "models", sha, data.stat().st_size)
    assert 0 < kept < data.stat().st_size
    hub.faults.rate = None
    served = hub.served.bytes
    again = _engine(hub, tmp_path, data, connections=2, segment=128 * 1024).run()
    assert again.sha256 == sha and again.resumed_from == kept
    assert hub.served.bytes - served == data.stat().st_size - kept  # a clean stop loses nothing
