"""ComfyClient against the fake ComfyUI and against servers that fail in the ways the client maps."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from fluxops.comfy.client import ComfyClient, base_url, is_loopback
from fluxops.errors import FluxopsError
from tests.comfy.conftest import free_port
from tests.fakes.http_stub import StubServer


def test_routes_against_the_fake(start_fake) -> None:
    _proc, port = start_fake("--cpu")
    with ComfyClient(base_url("127.0.0.1", port), timeout=5) as client:
        assert client.system_stats()["system"]["argv"][-1] == "--cpu"
        assert client.queue() == {"queue_running": [], "queue_pending": []}
        assert client.queue_remaining() == 0
        assert set(client.object_info()) >= {"UNETLoader", "DualCLIPLoader", "KSampler", "SaveImage"}
        assert client.object_info("NoSuchNode") == {}
        assert client.models("vae") == ["ae.safetensors"]
        assert client.features()["max_upload_size"] == 104857600
        with pytest.raises(FluxopsError) as err:
            client.models("unet")
        assert err.value.code == "comfy.unknown_model_folder"
        assert client.ws_url("abc") == f"ws://127.0.0.1:{port}/ws?clientId=abc"


def test_nothing_listening_is_unreachable() -> None:
    client = ComfyClient(base_url("127.0.0.1", free_port()), timeout=2)
    with pytest.raises(FluxopsError) as err:
        client.system_stats()
    assert err.value.code == "comfy.unreachable"
    assert "connection refused" in err.value.message and "fluxops comfy start" in (err.value.hint or "")


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # the kernel accepts the connection; nobody ever answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        client = ComfyClient(base_url("127.0.0.1", listener.getsockname()[1]), timeout=0.5)
        with pytest.raises(FluxopsError) as err:
            client.queue()
    assert err.value.code == "comfy.timeout"


def _not_comfy(path: str, _headers: object) -> tuple[int, dict[str, str], bytes]:
    """A web server that is not ComfyUI: an HTML page, and a 500 on /queue."""
    return (500, {}, b"Server got itself in trouble") if path == "/queue" else (200, {}, b"<html>hi</html>")


@pytest.fixture
def not_comfy() -> Iterator[str]:
    with StubServer(_not_comfy) as server:
        yield server.url


def test_http_errors_and_foreign_answers(not_comfy: str) -> None:
    client = ComfyClient(not_comfy, timeout=5)
    with pytest.raises(FluxopsError) as err:
        client.queue()
    assert err.value.code == "comfy.http_error" and "HTTP 500" in err.value.message
    with pytest.raises(FluxopsError) as err:
        client.system_stats()
    assert err.value.code == "comfy.bad_response"


def test_addresses() -> None:
    assert base_url("::1", 8188) == "http://[::1]:8188"
    assert base_url("127.0.0.1", 8188) == "http://127.0.0.1:8188"
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
