"""asgi_kit.testing: the in-process drivers and capture helpers users test with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from asgi_kit import (
    AccessLogMiddleware,
    CORSMiddleware,
    MetricsMiddleware,
    TracingMiddleware,
    metrics_app,
    testing,
)
from asgi_kit.types import Message, Receive, Scope, Send

START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"Content-Type", b"text/plain")],
}


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Streams back each request chunk as it arrives, upper-cased, then an empty last chunk."""
    if scope["type"] == "lifespan":
        return
    await send(START)
    while True:
        message = await receive()
        await send(
            {"type": "http.response.body", "body": message["body"].upper(), "more_body": True}
        )
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": b""})


async def test_request_streams_both_bodies_chunk_by_chunk() -> None:
    seen: list[str] = []
    response = await testing.request(
        echo_app, "POST", "/up", body=[b"a", b"", b"bc"], on_send=lambda m: seen.append(m["type"])
    )
    assert response.status == 200
    assert response.chunks == [b"A", b"", b"BC", b""]
    assert response.body == b"ABC" and response.text == "ABC" and response.complete
    assert response.header("content-type") == "text/plain"  # any case
    assert response.header_all("x-missing") == []
    assert seen == ["http.response.start", *["http.response.body"] * 4]


async def test_request_body_from_an_async_iterator_and_async_on_send() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"x", b"y"):
            await asyncio.sleep(0)
            yield part

    sent: list[Message] = []

    async def on_send(message: Message) -> None:
        await asyncio.sleep(0)
        sent.append(message)

    response = await testing.request(echo_app, "PUT", body=chunks(), on_send=on_send)
    assert response.chunks == [b"X", b"Y", b""] and len(sent) == 4


async def test_request_scope_and_disconnect() -> None:
    scopes: list[Scope] = []
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        received.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        received.append(await receive())  # after the response: the client is gone

    await testing.request(app, "GET", "/p", {"X-A": "1"}, query_string=b"q=1", scheme="https")
    scope = scopes[0]
    assert scope["path"] == "/p" and scope["query_string"] == b"q=1"
    assert scope["scheme"] == "https" and scope["headers"] == [(b"x-a", b"1")]
    assert received == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]
    with pytest.raises(AssertionError, match=r"no http\.response\.start"):
        _ = testing.Response().start
    with pytest.raises(TypeError, match="app"):
        await testing.request("not an app")  # type: ignore[arg-type]


async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"][::-1]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"] * 2})


async def test_websocket_round_trip() -> None:
    async with testing.websocket(ws_app, "/ws", {"Origin": "https://a.test"}) as ws:
        assert ws.accepted and ws.handshake == {"type": "websocket.accept"}
        await ws.send_text("abc")
        assert await ws.receive_text() == "cba"
        await ws.send_bytes(b"x")
        assert await ws.receive_bytes() == b"xx"
        await ws.close()


async def test_websocket_refused_handshake() -> None:
    app = CORSMiddleware(ws_app, allow_origins=["https://a.test"])
    async with testing.websocket(app, headers={"Origin": "https://evil.test"}) as ws:
        assert not ws.accepted
        assert ws.handshake == {"type": "websocket.close", "code": 1008}
    scope = testing.websocket_scope(http_response_extension=True, subprotocols=["chat"])
    async with testing.websocket(app, scope=scope, headers={"Origin": "https://evil.test"}) as ws:
        assert ws.accepted  # the given scope has no Origin: a non-browser client


async def test_lifespan_runs_startup_and_shutdown() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            step = message["type"].removeprefix("lifespan.")
            events.append(step)
            if step == "startup":
                scope["state"]["db"] = "connected"
            await send({"type": f"lifespan.{step}.complete"})
            if step == "shutdown":
                return

    async with testing.lifespan(app) as state:
        assert state == {"db": "connected"} and events == ["startup"]
    assert events == ["startup", "shutdown"]


async def test_lifespan_failures_are_errors() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(RuntimeError, match="no database"):
        async with testing.lifespan(failing):
            pass

    async def unsupported(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("only http")

    with pytest.raises(RuntimeError, match="returned during lifespan startup"):
        async with testing.lifespan(unsupported):
            pass


async def test_lifespan_passes_through_middleware() -> None:
    """Middleware ignore lifespan: the app's own startup still runs."""
    started: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        started.append(True)
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async with testing.lifespan(CORSMiddleware(app)):
        assert started == [True]


async def test_capture_spans_with_tracing_middleware() -> None:
    spans = testing.capture_spans()
    app = TracingMiddleware(echo_app, tracer_provider=spans.provider)
    await testing.request(app, "GET", "/traced")
    span = spans.only()
    assert span.attributes is not None and span.attributes["url.path"] == "/traced"
    spans.clear()
    assert spans.spans == []


async def test_metric_samples_from_a_registry_and_from_exposition_text() -> None:
    registry = CollectorRegistry()
    app = MetricsMiddleware(echo_app, registry=registry, group_paths=False)
    await testing.request(app, "GET", "/m")
    name = "http_server_request_duration_seconds_count"
    assert testing.metric_value(registry, name, method="GET", status_code="200") == 1.0
    assert testing.metric_value(registry, name, method="POST") is None
    text = (await testing.request(metrics_app(registry), "GET", "/metrics")).body
    assert testing.metric_value(text, name, method="GET", status_code="200") == 1.0
    openmetrics = await testing.request(
        metrics_app(registry),
        "GET",
        "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert b"# EOF" in openmetrics.body
    assert testing.metric_samples(openmetrics.body.decode(), name, method="GET")
    with pytest.raises(AssertionError, match="samples match"):
        testing.metric_value(registry, "http_server_request_duration_seconds_bucket")


async def test_capture_events_with_the_access_log() -> None:
    with testing.capture_events() as events:
        await testing.request(AccessLogMiddleware(echo_app), "GET", "/logged")
    (event,) = [e for e in events if e.get("path") == "/logged"]
    assert event["status"] == 200 and event["method"] == "GET"


def test_capture_spans_explains_a_missing_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_sdk(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry.sdk"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sdk)
    with pytest.raises(ImportError, match="pip install opentelemetry-sdk"):
        testing.capture_spans()
