"""TracingMiddleware over real sockets under Uvicorn, Hypercorn, Daphne and Granian."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def wait_for_spans(client: httpx.Client, count: int) -> list[dict[str, Any]]:
    # A span ends just after the last byte went out: poll briefly.
    deadline = time.monotonic() + 10
    while True:
        spans: list[dict[str, Any]] = client.get("/spans").json()
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


def test_spans_under_real_servers(live_server: LiveServerFactory) -> None:
    server = live_server("tests.apps.tracing_app:app")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get(
            "/items/5?q=1", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        )
        assert response.status_code == 200
        assert response.json() == {"item_id": 5, "trace_id": TRACE_ID}
        assert response.headers["traceresponse"].startswith(f"00-{TRACE_ID}-")
        assert client.get("/nope/123").status_code == 404
        assert client.get("/items/5", headers={"traceparent": "00-broken"}).status_code == 200

        with connect(f"{server.ws_url}/ws/lobby", open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "lobby:hi"

        spans = wait_for_spans(client, 4)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    assert sorted(by_name) == ["GET", "GET /items/{item_id}", "GET /ws/{room}"], spans
    assert all(s["kind"] == "SERVER" for s in spans)

    child, fresh = by_name["GET /items/{item_id}"]
    assert (child["trace_id"], child["parent_id"]) == (TRACE_ID, PARENT_ID)
    assert response.headers["traceresponse"] == f"00-{TRACE_ID}-{child['span_id']}-01"
    attrs = child["attributes"]
    assert attrs["http.route"] == "/items/{item_id}"
    assert attrs["http.response.status_code"] == 200
    assert attrs["url.path"] == "/items/5"
    assert attrs["url.query"] == "q=1"
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == server.port
    assert attrs["client.address"] == "127.0.0.1"
    assert attrs["network.protocol.version"] == "1.1"
    assert attrs["user_agent.original"].startswith("python-httpx/")
    assert fresh["parent_id"] is None and fresh["trace_id"] != TRACE_ID

    [missing] = by_name["GET"]
    assert missing["attributes"]["http.response.status_code"] == 404
    assert "http.route" not in missing["attributes"]

    [ws_span] = by_name["GET /ws/{room}"]
    assert ws_span["attributes"]["http.response.status_code"] == 101
    assert ws_span["attributes"]["url.scheme"] == "ws"
