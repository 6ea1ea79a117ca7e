"""The shared response observer: one set of rules, and tracing, metrics and logs agree."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from asgi_kit import AccessLogMiddleware, MetricsMiddleware, TracingMiddleware
from asgi_kit._observer import (
    DEFAULT_KNOWN_METHODS,
    ENV_KNOWN_METHODS,
    STATUS_CLIENT_CLOSED,
    STATUS_NO_RESPONSE,
    HTTPObserver,
    WebSocketObserver,
    known_methods,
    response_status,
)
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import call_http, http_scope

DURATION = "http_server_request_duration_seconds"


@pytest.fixture(autouse=True)
def _structlog_defaults(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_KNOWN_METHODS, raising=False)
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ({"status": 200}, 200),
        ({"status": HTTPStatus.NOT_FOUND}, 404),
        ({}, STATUS_NO_RESPONSE),
        ({"status": None}, STATUS_NO_RESPONSE),
        ({"status": "200"}, STATUS_NO_RESPONSE),
        ({"status": True}, STATUS_NO_RESPONSE),
        ({"status": 99}, STATUS_NO_RESPONSE),
        ({"status": 1000}, STATUS_NO_RESPONSE),
    ],
)
def test_response_status(message: dict[str, Any], status: int) -> None:
    assert response_status({"type": "http.response.start", **message}) == status


@given(st.one_of(st.none(), st.integers(), st.text(), st.floats(), st.binary()))
def test_response_status_never_raises(value: object) -> None:
    status = response_status({"type": "http.response.start", "status": value})
    assert 100 <= status <= 999


def test_known_methods_from_option_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert known_methods(None) is DEFAULT_KNOWN_METHODS
    assert known_methods([" get", "PURGE", ""]) == {"GET", "PURGE"}
    monkeypatch.setenv(ENV_KNOWN_METHODS, "GET,PROPFIND")
    assert known_methods(None) == {"GET", "PROPFIND"}
    with pytest.raises(TypeError, match="known_methods"):
        known_methods("GET")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="known_methods"):
        known_methods([b"GET"])  # type: ignore[list-item]


async def _drive(app: Any, messages: list[Message], *, fail_send: bool = False) -> HTTPObserver:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if fail_send:
            raise OSError("client gone")

    observer = HTTPObserver(receive, send)
    try:
        await app(http_scope(), observer.receive, observer.send)
    except asyncio.CancelledError:
        observer.cancelled()
    except Exception as exc:
        observer.raised(exc)
    return observer


REQUEST = {"type": "http.request", "body": b"abc", "more_body": False}


async def test_counts_bytes_and_completion() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"12", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    observer = await _drive(app, [REQUEST])
    assert observer.final_status() == 201
    assert (observer.request_bytes, observer.response_bytes) == (3, 2)
    assert observer.completed_at > 0
    assert not observer.disconnected and observer.error is None


async def test_no_response_is_500_and_the_exception_is_the_error() -> None:
    async def raises(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("bug")

    async def returns(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    observer = await _drive(raises, [])
    assert observer.final_status() == STATUS_NO_RESPONSE
    assert isinstance(observer.error, KeyError)
    observer = await _drive(returns, [])
    assert observer.final_status() == STATUS_NO_RESPONSE
    assert observer.error is None


async def test_client_gone_before_any_response_is_499_not_an_error() -> None:
    async def reads_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await receive()  # http.disconnect
        raise RuntimeError("ClientDisconnect")

    async def cancelled(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError

    for app in (reads_disconnect, cancelled):
        observer = await _drive(app, [REQUEST])
        assert observer.final_status() == STATUS_CLIENT_CLOSED
        assert observer.disconnected and observer.error is None


async def test_failed_send_is_a_disconnect_with_the_status_sent() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    observer = await _drive(app, [], fail_send=True)
    assert observer.final_status() == 200
    assert observer.disconnected and observer.send_failed and observer.error is None


async def test_start_without_status_counts_as_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    observer = await _drive(app, [])
    assert observer.final_status() == STATUS_NO_RESPONSE


async def test_pathsend_and_zerocopysend_count_bytes() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"Content-Length", b"7")]}
        )
        await send({"type": "http.response.zerocopysend", "file": 3, "count": 5, "more_body": True})
        await send({"type": "http.response.pathsend", "path": "/x"})

    observer = await _drive(app, [])
    assert observer.response_bytes == 12
    assert observer.completed_at > 0


async def test_websocket_rules() -> None:
    async def drive(app: Any, incoming: list[Message]) -> WebSocketObserver:
        pending = list(incoming)

        async def receive() -> Message:
            return pending.pop(0) if pending else {"type": "websocket.disconnect", "code": 1001}

        async def send(message: Message) -> None:
            return None

        observer = WebSocketObserver(receive, send)
        try:
            await app({"type": "websocket"}, observer.receive, observer.send)
        except Exception as exc:
            observer.raised(exc)
        return observer

    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"] + "é"})
        await receive()  # the client leaves

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": None})

    async def deny(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no"})

    async def crash(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("bug")

    connect = {"type": "websocket.connect"}
    observer = await drive(echo, [connect, {"type": "websocket.receive", "text": "hi"}])
    assert (observer.final_status(), observer.close_code) == (101, 1001)
    assert (observer.bytes_in, observer.bytes_out) == (2, 4)
    assert observer.accepted_at > 0 and observer.disconnected
    observer = await drive(refuse, [connect])
    assert (observer.final_status(), observer.close_code) == (403, 1000)
    observer = await drive(deny, [])
    assert (observer.final_status(), observer.response_bytes) == (401, 2)
    observer = await drive(crash, [])
    assert observer.final_status() == STATUS_NO_RESPONSE
    assert isinstance(observer.error, ValueError)


# --------------------------------------------------------------------------- agreement


class Stack:
    """Tracing, metrics and the access log around one app, with their outputs."""

    def __init__(self, app: Any) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.registry = CollectorRegistry()
        self.app = TracingMiddleware(
            MetricsMiddleware(AccessLogMiddleware(app), registry=self.registry),
            tracer_provider=provider,
        )

    def outcome(self, logs: list[dict[str, Any]]) -> tuple[Any, ...]:
        (span,) = self.exporter.get_finished_spans()
        (log,) = logs
        attrs = span.attributes or {}
        samples = [
            s
            for family in self.registry.collect()
            for s in family.samples
            if s.name == f"{DURATION}_count"
        ]
        (sample,) = samples
        assert log["method"] == attrs["http.request.method"] == sample.labels["method"]
        assert str(log["status"]) == str(attrs["http.response.status_code"])
        assert sample.labels["status_code"] == str(log["status"])
        return log["method"], log["status"], log.get("method_original")


async def test_lower_case_method_is_other_everywhere() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    stack = Stack(app)
    with capture_logs() as logs:
        await call_http(stack.app, "get")
    assert stack.outcome(logs) == ("_OTHER", 405, "get")


async def test_start_without_status_is_500_everywhere_and_never_a_key_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    stack = Stack(app)
    with capture_logs() as logs:
        await call_http(stack.app)
    assert stack.outcome(logs) == ("GET", 500, None)


async def test_no_response_is_500_everywhere() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    stack = Stack(app)
    with capture_logs() as logs:
        await call_http(stack.app, "POST")
    assert stack.outcome(logs) == ("POST", 500, None)


async def test_client_gone_before_a_response_is_499_everywhere() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    stack = Stack(app)
    pending: list[Message] = [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    with capture_logs() as logs:
        await stack.app(http_scope(), receive, send)
    assert stack.outcome(logs) == ("GET", 499, None)
    assert logs[0]["disconnected"] is True
