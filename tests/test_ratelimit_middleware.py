"""RateLimitMiddleware behaviour in-process: headers, responses, scopes, options."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from asgi_kit import RateLimitMiddleware
from asgi_kit._http import send_response
from asgi_kit.ratelimit import Backend, BackendError, MemoryBackend, Outcome, Rule, header
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import (
    asgi_client,
    call_http,
    http_scope,
    streaming_app,
    websocket,
    websocket_scope,
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send_response(send, 200, b"ok")


def limited(*rules: Rule, **options: Any) -> RateLimitMiddleware:
    return RateLimitMiddleware(app, rules=list(rules) or None, **options)


async def test_legacy_headers_on_every_response_and_429() -> None:
    mw = limited(Rule("2/minute"))
    first = await call_http(mw)
    assert first.status == 200
    assert first.header("RateLimit-Limit") == "2"
    assert first.header("RateLimit-Remaining") == "1"
    assert first.header("RateLimit-Reset") == "30"
    assert first.header("RateLimit-Policy") == "2;w=60"
    assert first.header("Retry-After") is None
    assert first.header("content-type") == "text/plain; charset=utf-8"
    await call_http(mw)
    denied = await call_http(mw)
    assert denied.status == 429
    assert denied.header("Retry-After") == "30"
    assert denied.header("RateLimit-Reset") == denied.header("Retry-After")
    assert denied.header("RateLimit-Remaining") == "0"
    assert denied.header("content-type") == "application/json"
    assert json.loads(denied.body) == {"detail": "Too Many Requests", "retry_after": 30}
    assert int(denied.header("content-length") or 0) == len(denied.body)


async def test_retry_after_is_whole_seconds_rounded_up() -> None:
    mw = limited(Rule("3/second"))  # one unit every 0.333 s
    for _ in range(3):
        await call_http(mw)
    denied = await call_http(mw)
    assert denied.status == 429
    assert denied.header("Retry-After") == "1"


async def test_ietf_headers() -> None:
    mw = limited(Rule("10/minute", name="burst"), headers="ietf")
    response = await call_http(mw)
    assert response.header("RateLimit-Policy") == '"burst";q=10;w=60'
    assert response.header("RateLimit") == '"burst";r=9;t=6'
    assert response.header("RateLimit-Limit") is None
    for _ in range(9):
        await call_http(mw)
    denied = await call_http(mw)
    assert denied.status == 429
    assert denied.header("RateLimit") == '"burst";r=0;t=6'
    assert denied.header("Retry-After") == "6"


async def test_headers_false_sends_only_retry_after() -> None:
    mw = limited(Rule("1/minute"), headers=False)
    ok = await call_http(mw)
    assert not [k for k, _ in ok.headers if k.startswith(b"ratelimit")]
    denied = await call_http(mw)
    assert denied.status == 429
    assert not [k for k, _ in denied.headers if k.startswith(b"ratelimit")]
    assert denied.header("Retry-After") == "60"


async def test_headers_never_duplicated_whatever_the_app_sends() -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                # Django-style capitalisation, and a tuple rather than a list.
                "headers": ((b"RateLimit-Limit", b"999"), (b"Content-Type", b"text/plain")),
            }
        )
        await send({"type": "http.response.body", "body": b"x"})

    mw = RateLimitMiddleware(inner, rules=[Rule("5/minute")])
    response = await call_http(mw)
    assert response.header_all("ratelimit-limit") == ["5"]
    assert response.header_all("content-type") == ["text/plain"]


async def test_streaming_is_not_buffered() -> None:
    seen: list[str] = []
    mw = RateLimitMiddleware(streaming_app, rules=[Rule("5/minute")])
    response = await call_http(mw, on_send=lambda m: seen.append(m["type"]))
    assert seen == ["http.response.start"] + ["http.response.body"] * 4
    assert response.chunks == [b"0", b"1", b"2", b""]


async def test_most_restrictive_rule_is_described_and_all_rules_apply() -> None:
    mw = limited(Rule("10/minute"), Rule("2/minute", path="/login", methods={"POST"}))
    other = await call_http(mw, "GET", "/")
    assert other.header("RateLimit-Limit") == "10"
    login = await call_http(mw, "POST", "/login")
    assert login.header("RateLimit-Limit") == "2"
    assert login.header("RateLimit-Remaining") == "1"
    await call_http(mw, "POST", "/login")
    denied = await call_http(mw, "POST", "/login")
    assert denied.status == 429
    assert denied.header("RateLimit-Limit") == "2"
    # The denied login consumed nothing of the general rule: 10 - 3 = 7 left.
    after = await call_http(mw, "GET", "/")
    assert after.header("RateLimit-Remaining") == "6"


async def test_ietf_policy_lists_every_applicable_rule() -> None:
    mw = limited(Rule("10/minute", name="minute"), Rule("100/day", name="day"), headers="ietf")
    response = await call_http(mw)
    assert response.header("RateLimit-Policy") == '"minute";q=10;w=60, "day";q=100;w=86400'
    assert response.header("RateLimit").startswith('"minute";r=9;')  # type: ignore[union-attr]


async def test_exempt_paths_and_unmatched_rules_pass_untouched() -> None:
    mw = limited(Rule("1/minute", path="/api/*"), exempt_paths=["/api/health"])
    for _ in range(3):
        health = await call_http(mw, path="/api/health")
        assert health.status == 200 and health.header("RateLimit-Limit") is None
        other = await call_http(mw, path="/static/app.js")
        assert other.status == 200 and other.header("RateLimit-Limit") is None
    assert (await call_http(mw, path="/api/x")).status == 200
    assert (await call_http(mw, path="/api/y")).status == 429


async def test_keys_default_client_ip_header_and_async() -> None:
    mw = limited(Rule("1/minute"))
    assert (await call_http(mw, client=("198.51.100.1", 1))).status == 200
    assert (await call_http(mw, client=("198.51.100.1", 2))).status == 429
    assert (await call_http(mw, client=("198.51.100.2", 1))).status == 200

    by_key = limited(Rule("1/minute", key=header("X-API-Key")))
    scope = http_scope(client=("198.51.100.1", 1))
    scope["headers"] = [(b"X-API-Key", b"alpha")]  # mixed case, as Django sends
    assert (await call_http(by_key, scope=dict(scope))).status == 200
    assert (await call_http(by_key, scope=dict(scope))).status == 429
    # No key -> not limited by that rule.
    for _ in range(3):
        assert (await call_http(by_key)).status == 200

    async def tenant(scope: Scope) -> str | None:
        return scope["path"].split("/")[1] or None

    async_mw = limited(Rule("1/minute"), key=tenant)
    assert (await call_http(async_mw, path="/acme/a")).status == 200
    assert (await call_http(async_mw, path="/acme/b")).status == 429
    assert (await call_http(async_mw, path="/globex/a")).status == 200
    assert (await call_http(async_mw, path="/")).status == 200  # None: not limited


async def test_same_limit_with_different_keys_are_independent_rules() -> None:
    # Per client IP and per API key, both "2/minute": two buckets, no error.
    mw = limited(Rule("2/minute", key=header("X-API-Key")), Rule("2/minute"))
    one_ip, other_ip = ("198.51.100.1", 1), ("198.51.100.2", 1)
    key = {"x-api-key": "alpha"}
    assert (await call_http(mw, client=one_ip, headers=key)).status == 200
    assert (await call_http(mw, client=other_ip, headers=key)).status == 200
    # The key's bucket is used up; the second IP's is not.
    assert (await call_http(mw, client=other_ip, headers=key)).status == 429
    assert (await call_http(mw, client=other_ip)).status == 200
    assert (await call_http(mw, client=other_ip)).status == 429  # now its IP bucket
    # Two rules that really are the same still need a distinct name.
    with pytest.raises(ValueError, match="name="):
        by_key = header("X-API-Key")
        limited(Rule("2/minute", key=by_key), Rule("2/minute", key=by_key))


async def test_huge_keys_are_hashed() -> None:
    backend = MemoryBackend()
    mw = RateLimitMiddleware(app, rules=[Rule("1/minute", key=header("x-k"))], backend=backend)
    big = b"a" * 10_000
    assert (await call_http(mw, headers={"x-k": big.decode()})).status == 200
    assert (await call_http(mw, headers={"x-k": big.decode()})).status == 429
    ((_, stored),) = backend._store.keys()
    assert stored.startswith("sha256:") and len(stored) < 100


async def test_key_function_returning_a_wrong_type_is_a_clear_error() -> None:
    mw = limited(Rule("1/minute"), key=lambda scope: 42)
    with pytest.raises(TypeError, match="expected str or None"):
        await call_http(mw)


async def test_on_limited_app_gets_headers_and_decision() -> None:
    async def custom(scope: Scope, receive: Receive, send: Send) -> None:
        decision = scope["ratelimit"]
        body = f"slow down, retry in {decision['retry_after']}s".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"Retry-After", b"999"), (b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    mw = limited(Rule("1/minute"), on_limited=custom)
    await call_http(mw)
    denied = await call_http(mw)
    assert denied.status == 503
    assert denied.body == b"slow down, retry in 60s"
    assert denied.header_all("retry-after") == ["60"]
    assert denied.header("RateLimit-Remaining") == "0"


async def test_websocket_handshake_denied_before_accept() -> None:
    mw = limited(Rule("1/minute"))
    async with websocket(mw, websocket_scope(http_response_extension=True)) as ws:
        await ws.send_input({"type": "websocket.connect"})
        accepted = await ws.receive_output(1)
        assert accepted["type"] == "websocket.accept"
        assert (b"ratelimit-remaining", b"0") in accepted["headers"]
    async with websocket(mw, websocket_scope(http_response_extension=True)) as ws:
        await ws.send_input({"type": "websocket.connect"})
        start = await ws.receive_output(1)
        assert start["type"] == "websocket.http.response.start"
        assert start["status"] == 429
        assert (b"retry-after", b"60") in start["headers"]
    async with websocket(mw, websocket_scope()) as ws:  # no HTTP-response extension
        await ws.send_input({"type": "websocket.connect"})
        closed = await ws.receive_output(1)
        assert closed["type"] == "websocket.close"


async def test_lifespan_and_unknown_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    mw = RateLimitMiddleware(inner, rules=[Rule("1/hour")])
    for _ in range(3):
        await mw({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await mw({"type": "custom"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"] * 3 + ["custom"]


async def test_asgi2_app_is_wrapped() -> None:
    class Legacy:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"legacy"})

    mw = RateLimitMiddleware(Legacy, rules=[Rule("1/minute")])
    ok = await call_http(mw)
    assert (ok.status, ok.body, ok.header("ratelimit-limit")) == (200, b"legacy", "1")
    assert (await call_http(mw)).status == 429


async def test_works_through_httpx_and_fastapi() -> None:
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/items")
    async def items() -> dict[str, bool]:
        return {"ok": True}

    api.add_middleware(RateLimitMiddleware, rules=[Rule("2/minute")], headers="ietf")
    async with asgi_client(api) as client:
        statuses = [(await client.get("/items")).status_code for _ in range(3)]
        last = await client.get("/items")
    assert statuses == [200, 200, 429]
    assert isinstance(last, httpx.Response) and last.headers["retry-after"]


class FailingBackend(Backend):
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    async def hit(self, checks: Sequence[tuple[Rule, str]]) -> Sequence[Outcome]:
        self.calls += 1
        raise self.exc


@pytest.mark.parametrize("exc", [BackendError("connection refused"), RuntimeError("boom")])
async def test_backend_failure_allow_logs_the_first_failure_at_once(exc: Exception) -> None:
    mw = limited(Rule("1/minute"), backend=FailingBackend(exc))
    with capture_logs() as logs:
        responses = [await call_http(mw) for _ in range(3)]
    assert [r.status for r in responses] == [200, 200, 200]
    assert responses[0].header("RateLimit-Limit") is None
    assert len(logs) == 1  # the next two wait for the interval's summary
    assert logs[0]["log_level"] == "error"
    assert logs[0]["on_backend_error"] == "allow"
    assert logs[0]["error_type"] == type(exc).__name__


async def test_backend_failure_reaches_stdlib_logging_when_structlog_is_unconfigured(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unconfigured structlog prints to stdout, invisible to logging handlers.
    import structlog

    monkeypatch.setattr(structlog, "is_configured", lambda: False)
    mw = limited(Rule("1/minute"), backend=FailingBackend(BackendError("refused")))
    with caplog.at_level(logging.ERROR, logger="asgi_kit.ratelimit"):
        responses = [await call_http(mw, path="/x") for _ in range(2)]
    assert [r.status for r in responses] == [200, 200]
    records = [r for r in caplog.records if r.name == "asgi_kit.ratelimit"]
    assert len(records) == 1  # collapsed: the second is in the next summary
    assert records[0].levelno == logging.ERROR
    assert "BackendError: refused" in records[0].getMessage()
    assert records[0].on_backend_error == "allow"  # type: ignore[attr-defined]
    assert records[0].path == "/x"  # type: ignore[attr-defined]


async def test_backend_failure_deny_answers_503() -> None:
    mw = limited(
        Rule("1/minute"),
        backend=FailingBackend(BackendError("down")),
        on_backend_error="deny",
        error_retry_after=5,
    )
    with capture_logs() as logs:
        response = await call_http(mw)
        async with websocket(mw, websocket_scope(http_response_extension=True)) as ws:
            await ws.send_input({"type": "websocket.connect"})
            start: Message = await ws.receive_output(1)
    assert response.status == 503
    assert response.header("Retry-After") == "5"
    assert json.loads(response.body) == {"detail": "Service Unavailable"}
    assert start["status"] == 503
    assert len(logs) == 1  # collapsed: one episode of failures


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="on_backend_error"):
        limited(on_backend_error="ignore")
    with pytest.raises(ValueError, match="headers"):
        limited(headers="draft-7")
    with pytest.raises(TypeError, match="rules"):
        RateLimitMiddleware(app, rules="100/minute")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rules"):
        RateLimitMiddleware(app, rules=["100/minute"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="rules"):
        RateLimitMiddleware(app, rules=[])
    with pytest.raises(ValueError, match="name="):
        limited(Rule("1/minute"), Rule("1/minute"))
    with pytest.raises(TypeError, match="backend"):
        limited(backend="redis://")
    with pytest.raises(TypeError, match="key"):
        limited(key="ip")
    with pytest.raises(ValueError, match="exempt_paths"):
        limited(exempt_paths=["health"])
    with pytest.raises(TypeError, match="on_limited"):
        limited(on_limited=429)
    with pytest.raises(ValueError, match="error_retry_after"):
        limited(error_retry_after=-1)
    # A single Rule, headers=True and exempt_paths=None are accepted conveniences.
    assert RateLimitMiddleware(app, rules=Rule("1/second"), headers=True).headers == "legacy"
    assert not RateLimitMiddleware(app, exempt_paths=None).exempt_paths


async def test_default_rule_is_100_per_minute() -> None:
    response = await call_http(RateLimitMiddleware(app))
    assert response.header("RateLimit-Policy") == "100;w=60"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=300), max_size=4), st.binary(max_size=50))
async def test_hostile_key_headers_never_break_a_request(values: list[bytes], path: bytes) -> None:
    mw = RateLimitMiddleware(app, rules=[Rule("2/minute", key=header("x-api-key"))])
    scope = http_scope(path="/" + path.decode("latin-1"))
    scope["headers"] = [(b"X-API-KEY", v) for v in values]
    for _ in range(3):
        response = await call_http(mw, scope=dict(scope))
        assert response.status in (200, 429)


async def test_method_case_head_and_spellings_share_one_bucket() -> None:
    mw = limited(
        Rule("3/minute", path="/login", methods={"POST"}),
        Rule("3/minute", path="/page", methods={"GET"}),
    )
    for method in ("post", "Post", "POST"):
        assert (await call_http(mw, method, "/login")).status == 200
    assert (await call_http(mw, "pOST", "/login/")).status == 429
    for method, path in (("HEAD", "/page"), ("get", "//page"), ("head", "/page/")):
        assert (await call_http(mw, method, path)).status == 200
    assert (await call_http(mw, "GET", "/./page")).status == 429
    # A single path rule (the middleware's one-rule fast path) too.
    single = limited(Rule("1/minute", path="/limited", methods={"GET"}))
    assert (await call_http(single, "GET", "/%6Cimited")).status == 200
    assert (await call_http(single, "head", "/limited//")).status == 429


async def test_exclude_paths_alias_and_exclusions_not_widened() -> None:
    mw = limited(Rule("1/minute"), exclude_paths=["/health", "/static/*"])
    assert mw.exclude_paths is mw.exempt_paths
    for _ in range(3):
        assert (await call_http(mw, "GET", "/health/")).status == 200
        assert (await call_http(mw, "GET", "/static//app.js")).status == 200
    assert (await call_http(mw, "GET", "/static/../admin")).status == 200  # counted: 1 of 1
    assert (await call_http(mw, "GET", "/health/../admin")).status == 429
    assert (await call_http(mw, "GET", "//health")).status == 429  # raw ASGI: not /health
    with pytest.raises(ValueError, match="exclude_paths or its alias exempt_paths"):
        limited(exclude_paths=["/a"], exempt_paths=["/b"])
    with pytest.raises(ValueError, match="exclude_paths"):
        limited(exclude_paths=["health"])


async def test_route_rules_read_the_route_from_the_scope() -> None:
    mw = limited(Rule("2/minute", route="/items/{item_id}"), Rule("100/minute"))
    for n in (1, 2):
        scope = http_scope("GET", f"/items/{n}", route="/items/{item_id}")
        assert (await call_http(mw, scope=scope)).status == 200
    scope = http_scope("GET", "/items/3", path_template="/items/{item_id:int}")
    assert (await call_http(mw, scope=scope)).status == 429
    assert (await call_http(mw, "GET", "/items/4")).status == 200  # no route known


async def test_a_route_rule_that_cannot_see_routes_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mw = limited(Rule("1/minute", route="/items/{item_id}"))
    with caplog.at_level(logging.WARNING, logger="asgi_kit.ratelimit"):
        for _ in range(3):
            assert (await call_http(mw, "GET", "/items/1")).status == 200
    warnings = [r for r in caplog.records if "route= rule cannot see the route" in r.message]
    assert len(warnings) == 1


async def test_route_rules_resolve_through_a_starlette_router() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def item(request: Any) -> PlainTextResponse:
        return PlainTextResponse("item")

    api = Starlette(routes=[Route("/items/{item_id:int}", item, methods=["GET", "POST"])])
    outer = Starlette(routes=[Mount("/api", app=api.router), Route("/other", item)])
    outer.add_middleware(
        RateLimitMiddleware, rules=[Rule("2/minute", route="/api/items/{item_id}")]
    )
    async with asgi_client(outer) as client:
        assert (await client.get("/api/items/1")).status_code == 200
        assert (await client.post("/api/items/2")).status_code == 200
        assert (await client.get("/api/items/3")).status_code == 429
        assert (await client.get("/other")).status_code == 200
        assert (await client.get("/api/items/x")).status_code == 404  # no route: not counted


async def test_route_rules_resolve_through_a_wrapped_litestar_app() -> None:
    from litestar import Litestar, get

    @get("/items/{item_id:int}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @get("/other")
    async def other() -> dict[str, bool]:
        return {"ok": True}

    app = Litestar(route_handlers=[item, other])
    mw = RateLimitMiddleware(app, rules=[Rule("2/minute", route="/items/{item_id}")])
    async with asgi_client(mw) as client:
        assert (await client.get("/items/1")).status_code == 200
        assert (await client.get("/items/2/")).status_code == 200
        assert (await client.get("/items/3")).status_code == 429
        assert (await client.get("/other")).status_code == 200
        assert (await client.get("/missing")).status_code == 404
