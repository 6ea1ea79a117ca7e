"""The demo's full middleware stack, in-process and over a real server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ._support.asgi import asgi_client
from ._support.servers import LiveServerFactory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import full_stack

ORIGIN = full_stack.FRONTEND


@pytest.fixture
def client() -> httpx.AsyncClient:
    # A host the demo's TrustedHostMiddleware allows.
    return asgi_client(full_stack.build(), base_url="http://127.0.0.1:8000")


async def test_guard_middleware_in_the_demo(client: httpx.AsyncClient) -> None:
    async with client:
        page = await client.get("/health")
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["content-security-policy"] == (
            "default-src 'self'; frame-ancestors 'none'"
        )
        forged = await client.put("/session", headers={"Sec-Fetch-Site": "cross-site"})
        assert forged.status_code == 403
        assert forged.headers["x-request-id"]
        trusted = await client.put(
            "/session", headers={"Sec-Fetch-Site": "same-site", "Origin": ORIGIN}
        )
        assert trusted.status_code == 200
        assert (await client.get("/", headers={"Host": "evil.example"})).status_code == 400


async def test_json_is_compressed_and_carries_the_request_id(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/", headers={"Accept-Encoding": "br, gzip"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "br"
        assert "accept-encoding" in response.headers["vary"].lower()
        assert response.json()["hello"] == "asgi_kit"
        assert len(response.headers["x-request-id"]) == 32

        echoed = await client.get("/health", headers={"X-Request-ID": "my-id-123"})
        assert echoed.headers["x-request-id"] == "my-id-123"


async def test_session_counter_round_trip(client: httpx.AsyncClient) -> None:
    async with client:
        first = await client.get("/session")
        assert first.json() == {"count": 1}
        assert "session=" in first.headers["set-cookie"]
        second = await client.get("/session")
        assert second.json() == {"count": 2}


async def test_limited_route_answers_429_after_five(client: httpx.AsyncClient) -> None:
    async with client:
        statuses = [(await client.get("/limited")).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        denied = await client.get("/limited", headers={"Origin": ORIGIN})
        assert denied.status_code == 429
        assert int(denied.headers["retry-after"]) >= 1
        # CORS sits outside the limiter: the browser can read the 429.
        assert denied.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in denied.headers


async def test_cors_preflight(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.options(
            "/", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "PUT" in response.headers["access-control-allow-methods"]
        refused = await client.options(
            "/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}
        )
        assert refused.status_code == 400


async def test_metrics_endpoint_has_route_labels(client: httpx.AsyncClient) -> None:
    async with client:
        await client.get("/stream")
        await client.get("/no/such/path/12345")
        body = (await client.get("/metrics")).text
    routes: set[Any] = set()
    for family in text_string_to_metric_families(body):
        if family.name == "http_server_request_duration_seconds":
            routes |= {s.labels.get("route") for s in family.samples}
    assert "/stream" in routes
    assert "/no/such/path/12345" not in routes


@pytest.mark.e2e
def test_sse_and_session_under_real_servers(live_server: LiveServerFactory) -> None:
    server = live_server("full_stack:app")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        events: list[str] = []
        with http.stream("GET", "/events", headers={"Accept-Encoding": "gzip"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events.extend(line for line in stream.iter_lines() if line.startswith("data:"))
        assert events == [f"data: event {i}" for i in range(5)]
        assert http.get("/session").json() == {"count": 1}
        assert http.get("/session").json() == {"count": 2}
