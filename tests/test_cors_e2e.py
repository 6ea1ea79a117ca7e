"""CORSMiddleware over real sockets under Uvicorn, Hypercorn, Daphne and Granian."""

from __future__ import annotations

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e

APP = "tests.apps.cors_app:app"
ALLOWED = "https://app.example.com"


def vary_tokens(response: httpx.Response) -> set[str]:
    values = response.headers.get_list("vary")
    assert len(values) == 1, values
    return {v.strip() for v in values[0].split(",")}


def test_preflight_and_credentialed_request(live_server: LiveServerFactory) -> None:
    server = live_server(APP)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        preflight = client.options(
            "/api",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "x-token, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.text == "OK"
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert preflight.headers["access-control-allow-methods"] == "GET, POST, PUT"
        assert preflight.headers["access-control-allow-headers"] == "x-token, content-type"
        assert preflight.headers["access-control-max-age"] == "120"
        assert "Origin" in vary_tokens(preflight)

        response = client.put(
            "/api", headers={"Origin": ALLOWED, "Cookie": "sid=42", "X-Token": "t"}
        )
        assert response.status_code == 200
        assert response.text == "cookie=sid=42"
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["access-control-expose-headers"] == "X-Total"
        assert vary_tokens(response) == {"Accept-Encoding", "Origin"}

        refused = client.options(
            "/api",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"},
        )
        assert refused.status_code == 400
        assert refused.text == "Disallowed CORS origin, method"
        assert "access-control-allow-origin" not in refused.headers

        plain = client.get("/api")
        assert "access-control-allow-origin" not in plain.headers
        assert vary_tokens(plain) == {"Accept-Encoding", "Origin"}


def test_websocket_origin_check(live_server: LiveServerFactory) -> None:
    server = live_server(APP)
    evil = Origin("https://evil.example")
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(f"{server.ws_url}/ws", origin=evil, open_timeout=10),
    ):
        pass  # pragma: no cover
    assert refused.value.response.status_code == 403

    for origin in (Origin(ALLOWED), None):
        with connect(f"{server.ws_url}/ws", origin=origin, open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "hi"
