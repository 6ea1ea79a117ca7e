"""The demo stack over real sockets under Uvicorn, Hypercorn, Daphne and Granian."""

from __future__ import annotations

import time

import httpx
import pytest
from websockets.sync.client import connect

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e


def test_http_stream_and_websocket(live_server: LiveServerFactory) -> None:
    server = live_server("full_stack:app")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get("/")
        assert response.status_code == 200
        assert response.json()["hello"] == "asgi_kit"

        started = time.monotonic()
        arrivals: list[float] = []
        body = b""
        with client.stream("GET", "/stream") as stream:
            assert stream.status_code == 200
            for chunk in stream.iter_bytes():
                arrivals.append(time.monotonic() - started)
                body += chunk
        assert body == b"".join(f"chunk {i}\n".encode() * 20 for i in range(5))
        # The app sleeps 50 ms between chunks: the first bytes must arrive well
        # before the last, i.e. nothing on the way buffered the stream.
        assert len(arrivals) >= 2
        assert arrivals[-1] - arrivals[0] > 0.1

    with connect(f"{server.ws_url}/ws", open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=10) == b"\x00\x01"
