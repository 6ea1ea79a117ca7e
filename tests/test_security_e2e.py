"""The guard middleware over real sockets under Uvicorn, Hypercorn and Daphne.

What only a server shows: the ``host`` header the server puts in the scope
(HTTP/1.0 without Host, odd bytes on the wire, HTTP/2's ``:authority``),
and WebSocket handshakes refused before accept.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e
APP = "tests.apps.security_app:app"


def raw_request(port: int, request: bytes) -> bytes:
    """Send ``request`` as written; return the status line the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


def test_hosts_over_the_wire(live_server: LiveServerFactory) -> None:
    server = live_server(APP)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/hits").status_code == 200
        assert client.get("/hits", headers={"host": "localhost:1234"}).status_code == 200
        answer = client.get("/hits", headers={"host": "evil.example"})
        assert answer.status_code == 400
        assert answer.text == "Invalid host header"
    # HTTP/1.0 without Host: refused by the middleware (the server lets it through).
    status = raw_request(server.port, b"GET /hits HTTP/1.0\r\n\r\n")
    assert status.split(b" ")[1] == b"400", status
    # Bytes a server may pass on: never a 500, always a 4xx.
    for host in (b"a\x01b", b"[::1", b"example.com:99999", b"\xff\xfe", b"x" * 300):
        status = raw_request(
            server.port, b"GET /hits HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
        )
        code = status.split(b" ")[1] if status.count(b" ") else b""
        assert code.startswith(b"4"), (host, status)


def test_websocket_handshake_cross_site_refused(live_server: LiveServerFactory) -> None:
    server = live_server(APP)
    with connect(
        f"{server.ws_url}/ws", origin=f"http://127.0.0.1:{server.port}", open_timeout=10
    ) as ws:
        assert ws.recv(timeout=10) == "welcome"
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"{server.ws_url}/ws",
            origin="https://evil.example",
            additional_headers={"Sec-Fetch-Site": "cross-site"},
            open_timeout=10,
        )
    assert refused.value.response.status_code == 403
    # Without Sec-Fetch-Site, the Origin decides.
    with pytest.raises(InvalidStatus):
        connect(f"{server.ws_url}/ws", origin="https://evil.example", open_timeout=10)


@pytest.mark.parametrize("live_server", ["hypercorn"], indirect=True)
def test_http2_authority_is_the_host(live_server: LiveServerFactory) -> None:
    # HTTP/2 has no Host header: the server maps :authority to "host".
    server = live_server(APP)
    with httpx.Client(base_url=server.url, http1=False, http2=True, timeout=10) as client:
        good = client.get("/hits")
        assert good.http_version == "HTTP/2"
        assert good.status_code == 200
        bad = client.get("/hits", headers={"host": "evil.example"})
        assert bad.http_version == "HTTP/2"
        assert bad.status_code == 400
