"""Request id, access log and proxy headers over real sockets under three servers.

The test client plays the proxy: it connects from 127.0.0.1 (trusted) and
sends forwarding headers.  Uvicorn applies its own proxy-header handling to
127.0.0.1 peers by default, so it runs with ``--no-proxy-headers`` here: what
the app sees is then asgi_kit's doing alone (Hypercorn and Daphne do nothing
by default).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from ._support.servers import LiveServerFactory, ServerProcess

pytestmark = pytest.mark.e2e


def _start(live_server: LiveServerFactory, target: str) -> ServerProcess:
    args = ["--no-proxy-headers"] if live_server.server == "uvicorn" else []
    return live_server(target, args=args)


def _access_events(server: ServerProcess, request_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        events = []
        for line in server.log().splitlines():
            if line.startswith("{") and request_id in line:
                events.append(json.loads(line))
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def test_behind_a_simulated_proxy(live_server: LiveServerFactory) -> None:
    server = _start(live_server, "tests.apps.logging_app:app")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get(
            "/orders",
            headers={
                "X-Forwarded-For": "6.6.6.6, 198.51.100.4, 10.0.0.2",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "shop.example",
                "X-Request-ID": "e2e-req-1",
                "User-Agent": "e2e-agent",
            },
        )
        assert response.status_code == 200
        seen = response.json()
        assert seen["client"][0] == "198.51.100.4"
        assert seen["scheme"] == "https"
        assert seen["host"] == "shop.example"
        assert seen["request_id"] == seen["state_request_id"] == "e2e-req-1"
        assert response.headers.get_list("x-request-id") == ["e2e-req-1"]

        # Garbage from the proxy: the peer stays the client; a bad id is replaced.
        response = client.get(
            "/", headers={"X-Forwarded-For": "unknown", "X-Request-ID": "bad id;<x>"}
        )
        seen = response.json()
        assert seen["client"][0] == "127.0.0.1"
        assert seen["scheme"] == "http"
        [generated] = response.headers.get_list("x-request-id")
        assert len(generated) == 32 and generated == seen["request_id"]

    [event] = _access_events(server, "e2e-req-1")
    assert event["event"] == "request"
    assert event["client"] == "198.51.100.4"
    assert event["scheme"] == "https"
    assert event["path"] == "/orders"
    assert event["status"] == 200
    assert event["user_agent"] == "e2e-agent"
    assert event["response_bytes"] > 0
    assert event["level"] == "info"

    with connect(
        f"{server.ws_url}/ws",
        additional_headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
        open_timeout=10,
    ) as ws:
        seen = json.loads(ws.recv(timeout=10))
        assert seen["client"][0] == "198.51.100.7"
        assert seen["scheme"] == "wss"
        assert seen["request_id"] and seen["request_id"] == seen["state_request_id"]
        assert ws.response is not None
        echoed = ws.response.headers.get_all("x-request-id")
        # Daphne 4 and Granian ignore the headers of websocket.accept (ASGI 2.1).
        ignored = live_server.server in ("daphne", "granian")
        assert echoed == ([] if ignored else [seen["request_id"]])
    [ws_event] = _access_events(server, seen["request_id"])
    assert ws_event["event"] == "websocket" and ws_event["status"] == 101


def test_forwarded_mode_behind_a_simulated_proxy(live_server: LiveServerFactory) -> None:
    server = _start(live_server, "tests.apps.logging_app:forwarded_app")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        headers = {
            "Forwarded": 'for="[2001:db8::7]:4711";proto=https;host=shop.example, for=10.0.0.2',
            "X-Forwarded-For": "6.6.6.6",
        }
        seen = client.get("/", headers=headers).json()
    assert seen["client"] == ["2001:db8::7", 4711]
    assert seen["scheme"] == "https"
    assert seen["host"] == "shop.example"


def test_client_disconnect_is_logged(live_server: LiveServerFactory) -> None:
    server = _start(live_server, "tests.apps.logging_app:app")
    with (
        httpx.Client(base_url=server.url, timeout=10) as client,
        client.stream("GET", "/slow", headers={"X-Request-ID": "gone-1"}) as stream,
    ):
        assert stream.status_code == 200
        next(stream.iter_raw())  # first chunk, then hang up mid-stream
    [event] = _access_events(server, "gone-1")
    assert event["disconnected"] is True
    assert event["status"] == 200
    assert 0 < event["response_bytes"] < 40_000
