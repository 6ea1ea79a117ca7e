"""Apps that reuse one header list and one start message on every response.

A raw ASGI app may keep its ``http.response.start`` message (and its header
list) at module level; Starlette sends one ``Response`` instance from several
endpoints.  No middleware may change what the app owns: an appended header
would then reach every later response, another user's session cookie
included.  Each test sends several requests through one middleware and
checks that the app's objects are unchanged and that no response carries a
header that belongs to an earlier one.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from asgi_kit import (
    AccessLogMiddleware,
    CompressionMiddleware,
    CORSMiddleware,
    MetricsMiddleware,
    RateLimitMiddleware,
    RequestIDMiddleware,
    SessionMiddleware,
    TracingMiddleware,
)
from asgi_kit.ratelimit import MemoryBackend, Rule

from ._support.asgi import call_http

HEADERS_TEMPLATE = ((b"Content-Type", b"text/plain"), (b"X-App", b"1"))


class ReusingApp:
    """Sends the same start message and header list on every response.

    ``/login`` puts a user into the session before answering; every other
    path just answers.
    """

    def __init__(self, body: bytes = b"hello") -> None:
        self.headers: list[tuple[bytes, bytes]] = list(HEADERS_TEMPLATE)
        self.start: dict[str, Any] = {
            "type": "http.response.start",
            "status": 200,
            "headers": self.headers,
        }
        self.body = {"type": "http.response.body", "body": body}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/login":
            scope["session"]["user"] = scope["query_string"].decode()
        await send(self.start)
        await send(self.body)

    def assert_untouched(self) -> None:
        assert self.headers == list(HEADERS_TEMPLATE)
        assert self.start == {
            "type": "http.response.start",
            "status": 200,
            "headers": self.headers,
        }
        assert self.start["headers"] is self.headers


async def test_session_cookie_never_reaches_another_user() -> None:
    app = ReusingApp()
    mw = SessionMiddleware(app, secret_key="s" * 32)
    alice = await call_http(mw, path="/login", query_string=b"alice")
    assert alice.header("set-cookie") is not None
    bob = await call_http(mw, path="/")
    assert bob.header_all("set-cookie") == []
    carol = await call_http(mw, path="/login", query_string=b"carol")
    assert len(carol.header_all("set-cookie")) == 1
    app.assert_untouched()


async def test_cors_headers_of_one_origin_never_reach_another() -> None:
    app = ReusingApp()
    mw = CORSMiddleware(app, allow_origins=["https://ok.example"], allow_credentials=True)
    allowed = await call_http(mw, headers={"origin": "https://ok.example"})
    assert allowed.header("access-control-allow-origin") == "https://ok.example"
    refused = await call_http(mw, headers={"origin": "https://evil.example"})
    assert refused.header("access-control-allow-origin") is None
    assert refused.header("access-control-allow-credentials") is None
    assert refused.header_all("vary") == ["Origin"]
    app.assert_untouched()


async def test_rate_limit_headers_never_reach_an_exempt_path() -> None:
    app = ReusingApp()
    mw = RateLimitMiddleware(
        app,
        rules=[Rule("10/minute")],
        backend=MemoryBackend(),
        exempt_paths=["/health"],
    )
    limited = await call_http(mw, path="/api/x")
    assert limited.header("ratelimit-limit") == "10"
    exempt = await call_http(mw, path="/health")
    assert [k for k, _ in exempt.headers if k.lower().startswith(b"ratelimit")] == []
    again = await call_http(mw, path="/api/x")
    assert again.header_all("ratelimit-remaining") == ["8"]
    app.assert_untouched()


async def test_traceresponse_never_reaches_an_excluded_path() -> None:
    app = ReusingApp()
    mw = TracingMiddleware(
        app,
        tracer_provider=TracerProvider(),
        excluded_paths=["/health"],
        traceresponse=True,
    )
    traced = await call_http(mw, path="/")
    assert traced.header("traceresponse") is not None
    excluded = await call_http(mw, path="/health")
    assert excluded.header("traceresponse") is None
    second = await call_http(mw, path="/")
    assert len(second.header_all("traceresponse")) == 1
    assert second.header("traceresponse") != traced.header("traceresponse")
    app.assert_untouched()


async def test_request_id_is_one_per_response() -> None:
    app = ReusingApp()
    mw = RequestIDMiddleware(app)
    first = await call_http(mw)
    second = await call_http(mw)
    assert len(second.header_all("x-request-id")) == 1
    assert first.header("x-request-id") != second.header("x-request-id")
    app.assert_untouched()


@pytest.mark.parametrize("accept", ["gzip", "br", "identity"])
async def test_compression_keeps_the_apps_start(accept: str) -> None:
    app = ReusingApp(body=b"hello " * 200)
    mw = CompressionMiddleware(app)
    for _ in range(3):
        response = await call_http(mw, headers={"accept-encoding": accept})
        assert len(response.header_all("vary")) == 1
        assert len(response.header_all("content-encoding")) <= 1
    app.assert_untouched()


async def test_observers_keep_the_apps_start() -> None:
    from prometheus_client import CollectorRegistry

    app = ReusingApp()
    mw = AccessLogMiddleware(MetricsMiddleware(app, registry=CollectorRegistry()))
    for _ in range(3):
        assert (await call_http(mw)).status == 200
    app.assert_untouched()


async def test_full_stack_reuse_never_leaks_a_cookie() -> None:
    app = ReusingApp()
    stack: Any = SessionMiddleware(app, secret_key="s" * 32)
    stack = RateLimitMiddleware(stack, rules=[Rule("100/minute")], backend=MemoryBackend())
    stack = CORSMiddleware(stack, allow_origins=["https://ok.example"])
    stack = CompressionMiddleware(stack)
    stack = TracingMiddleware(stack, tracer_provider=TracerProvider(), traceresponse=True)
    stack = RequestIDMiddleware(stack)
    await call_http(stack, path="/login", query_string=b"alice")
    for _ in range(3):
        bob = await call_http(stack, headers={"origin": "https://evil.example"})
        assert bob.header_all("set-cookie") == []
        assert bob.header("access-control-allow-origin") is None
        assert len(bob.header_all("x-request-id")) == 1
        assert len(bob.header_all("traceresponse")) == 1
        assert len(bob.header_all("ratelimit-limit")) == 1
    app.assert_untouched()
