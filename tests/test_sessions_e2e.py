"""Log-in / log-out round trips over real sockets under Uvicorn, Hypercorn, Daphne and Granian."""

from __future__ import annotations

import json

import httpx
import pytest
import redis
from websockets.sync.client import connect

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e


def ws_user(ws_url: str, cookie: str) -> object:
    """The user the WebSocket endpoint sees for ``cookie``."""
    headers = {"Cookie": f"session={cookie}"}
    with connect(f"{ws_url}/ws", additional_headers=headers, open_timeout=10) as ws:
        return json.loads(ws.recv(timeout=10))["user"]


def round_trip(base_url: str, ws_url: str) -> tuple[str, str]:
    """Anonymous visit, log in, use, log out; return the cookies before/after log-in."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        assert client.get("/me").json() == {"user": None, "visits": 1}
        anonymous = client.cookies["session"]
        response = client.post("/login", json={"user": "ann"})
        assert response.status_code == 200
        assert response.headers["vary"] == "Cookie"
        logged_in = client.cookies["session"]
        assert client.get("/me").json() == {"user": "ann", "visits": 2}
        assert ws_user(ws_url, client.cookies["session"]) == "ann"
        # A read-only request sends no cookie back.
        response = client.get("/peek")
        assert response.json() == {"user": "ann"}
        assert "set-cookie" not in response.headers
        response = client.post("/logout")
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert "session" not in client.cookies
        assert client.get("/peek").json() == {"user": None}
        return anonymous, logged_in


def test_login_logout_cookie_store(live_server: LiveServerFactory) -> None:
    server = live_server("tests.apps.sessions_app:app")
    anonymous, logged_in = round_trip(server.url, server.ws_url)
    assert anonymous != logged_in


@pytest.mark.redis
def test_login_logout_redis_store(live_server: LiveServerFactory, redis_url: str) -> None:
    server = live_server("tests.apps.sessions_app:redis_app", env={"SESSIONS_REDIS_URL": redis_url})
    anonymous, logged_in = round_trip(server.url, server.ws_url)
    # log-in rotated the id (fixation defence), log-out deleted the record.
    assert anonymous != logged_in
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.keys("e2e:*") == []
    finally:
        client.close()
    with httpx.Client(base_url=server.url, timeout=10) as replay:
        replay.cookies.set("session", logged_in)
        assert replay.get("/peek").json() == {"user": None}
