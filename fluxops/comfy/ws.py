"""ComfyUI's WebSocket (``/ws?clientId=ID``,
https://docs.comfy.org/development/comfyui-server/comms_messages) as a stream of JSON messages.

websocket-client does the protocol; this wrapper only adds what a ComfyUI client needs: a receive with a
timeout that returns None when nothing came, binary frames (previews) skipped, and one exception for "the
socket is gone" whatever the cause, so the caller can tell a dropped socket from a dead server.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import websocket

from fluxops.errors import FluxopsError


class StreamClosed(Exception):
    """The WebSocket closed or broke; the server may or may not still be there."""


class EventStream:
    def __init__(self, url: str, connect_timeout: float = 5.0):
        self.url = url
        try:
            # ComfyUI checks Origin against Host on loopback; websocket-client's default Origin matches.
            self._ws = websocket.create_connection(url, timeout=connect_timeout, enable_multithread=True,
                                                   skip_utf8_validation=True)
            # The optional first frame of the feature negotiation (section 4.1 of ComfyUI's protocol; sent by
            # the current frontend): previews, when a server sends any, then come as type 4 with JSON metadata
            # naming their prompt instead of bare type 1 images. Both are binary frames, skipped below.
            self._ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        except (OSError, websocket.WebSocketException) as exc:
            raise FluxopsError("comfy.unreachable", f"cannot open ComfyUI's WebSocket at {url} ({exc})") from exc

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next JSON message, or None when none arrived within ``timeout`` seconds."""
        self._ws.settimeout(timeout)
        while True:
            try:
                opcode, data = self._ws.recv_data()
            except (websocket.WebSocketTimeoutException, TimeoutError):
                return None
            except (OSError, websocket.WebSocketException) as exc:
                raise StreamClosed(str(exc) or type(exc).__name__) from exc
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise StreamClosed("the server closed the WebSocket")
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue  # binary preview frames (section 4.4): not used here
            try:
                message = json.loads(data)
            except ValueError:
                continue
            if isinstance(message, dict) and isinstance(message.get("data"), dict):
                return message

    def close(self) -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self._ws.close(timeout=1)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
