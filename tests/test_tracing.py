"""TracingMiddleware against the real OpenTelemetry SDK with an in-memory exporter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_setter,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import (
    NonRecordingSpan,
    NoOpTracerProvider,
    ProxyTracerProvider,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util._once import Once

from asgi_kit import TracingMiddleware
from asgi_kit import tracing as tracing_module
from asgi_kit.tracing import (
    ENV_CAPTURE_REQUEST,
    ENV_CAPTURE_RESPONSE,
    ENV_EXCLUDED_URLS,
    ENV_EXCLUDED_URLS_GENERIC,
    ENV_KNOWN_METHODS,
    ENV_SANITIZE,
)

from ._support.asgi import asgi_client, call_http, http_scope, websocket, websocket_scope
from .apps.tracing_routes import build_api

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

ENV_VARS = tuple(value for name, value in vars(tracing_module).items() if name.startswith("ENV_"))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class Recorder:
    """An SDK provider whose finished spans land in memory."""

    def __init__(self, **kwargs: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(shutdown_on_exit=False, **kwargs)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def only(self) -> ReadableSpan:
        spans = self.spans
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def global_slot() -> Iterator[None]:
    """A fresh, unset global tracer provider (the API allows one set per process)."""
    saved = (trace_api._TRACER_PROVIDER, trace_api._TRACER_PROVIDER_SET_ONCE)
    trace_api._TRACER_PROVIDER = None
    trace_api._TRACER_PROVIDER_SET_ONCE = Once()
    try:
        yield
    finally:
        trace_api._TRACER_PROVIDER, trace_api._TRACER_PROVIDER_SET_ONCE = saved


def make_app(
    status: int = 200,
    body: bytes | list[bytes] = b"hello",
    headers: list[tuple[bytes, bytes]] | None = None,
    seen: list[Any] | None = None,
) -> Any:
    chunks = body if isinstance(body, list) else [body]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if seen is not None:
            seen.append((trace_api.get_current_span(), send))
        await send(
            {"type": "http.response.start", "status": status, "headers": list(headers or [])}
        )
        for i, chunk in enumerate(chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )

    return app


def fastapi_app() -> FastAPI:
    api = build_api()

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    @api.get("/fail", response_class=PlainTextResponse)
    async def fail() -> PlainTextResponse:
        return PlainTextResponse("down", status_code=503)

    return api


# --------------------------------------------------------------------------- basics


async def test_one_server_span_with_stable_attributes(rec: Recorder) -> None:
    app = TracingMiddleware(make_app(body=[b"abc", b"defg"]), tracer_provider=rec.provider)
    response = await call_http(
        app,
        "POST",
        "/upload",
        headers={"host": "api.example.com:8443", "user-agent": "curl/8.5"},
        query_string=b"a=1&b=2",
        scheme="https",
        client=("203.0.113.9", 4711),
        http_version="2",
    )
    assert response.status == 200
    span = rec.only()
    assert span.name == "POST"
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "asgi_kit.tracing"
    assert dict(span.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/upload",
        "url.scheme": "https",
        "url.query": "a=1&b=2",
        "server.address": "api.example.com",
        "server.port": 8443,
        "client.address": "203.0.113.9",
        "user_agent.original": "curl/8.5",
        "network.protocol.version": "2",
        "http.response.status_code": 200,
        "http.response.body.size": 7,
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_server_address_fallbacks(rec: Recorder) -> None:
    app = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    await call_http(app, headers={"host": "shop.example"}, scheme="https")
    await call_http(app, headers={"host": "[2001:db8::1]:9000"})
    await call_http(app, headers={"host": "evil:99999999"})
    await call_http(app, headers={}, server=("10.0.0.5", 8000))
    await call_http(app, headers={"host": ":81"}, server=("10.0.0.6", 8001))
    await call_http(app, headers={}, server=None)
    attrs = [dict(s.attributes or {}) for s in rec.spans]
    assert (attrs[4]["server.address"], attrs[4]["server.port"]) == ("10.0.0.6", 8001)
    assert "server.address" not in attrs[5] and "server.port" not in attrs[5]
    assert (attrs[0]["server.address"], attrs[0]["server.port"]) == ("shop.example", 443)
    assert (attrs[1]["server.address"], attrs[1]["server.port"]) == ("2001:db8::1", 9000)
    assert (attrs[2]["server.address"], attrs[2]["server.port"]) == ("evil", 80)
    assert (attrs[3]["server.address"], attrs[3]["server.port"]) == ("10.0.0.5", 8000)


async def test_signed_query_parameters_are_redacted(rec: Recorder) -> None:
    app = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    await call_http(app, query_string=b"file=a.txt&Signature=s3cr3t&sig=xyz&X-Goog-Signature=q")
    assert rec.only().attributes["url.query"] == (  # type: ignore[index]
        "file=a.txt&Signature=REDACTED&sig=REDACTED&X-Goog-Signature=REDACTED"
    )


async def test_app_runs_inside_the_span_and_context_is_restored(rec: Recorder) -> None:
    seen: list[Any] = []
    app = TracingMiddleware(make_app(seen=seen), tracer_provider=rec.provider)
    await call_http(app)
    current, _ = seen[0]
    span = rec.only()
    assert current.get_span_context().span_id == span.context.span_id
    assert current.get_span_context().trace_id == span.context.trace_id
    assert not trace_api.get_current_span().get_span_context().is_valid


async def test_lifespan_passes_through(rec: Recorder) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    wrapped = TracingMiddleware(app, tracer_provider=rec.provider)
    await wrapped({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert calls == ["lifespan"]
    assert rec.spans == []


async def test_asgi2_app_is_wrapped(rec: Recorder) -> None:
    class Legacy:
        def __init__(self, scope: Any) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    app = TracingMiddleware(Legacy, tracer_provider=rec.provider)
    assert (await call_http(app)).status == 204
    assert rec.only().attributes["http.response.status_code"] == 204  # type: ignore[index]


# --------------------------------------------------------------------------- routing


async def test_span_named_after_fastapi_route_template(rec: Recorder) -> None:
    api = fastapi_app()
    api.add_middleware(TracingMiddleware, tracer_provider=rec.provider)
    async with asgi_client(api) as client:
        body = (await client.get("/items/42")).json()
        assert (await client.get("/items/7?x=1")).status_code == 200
        assert (await client.get("/nothing/here")).status_code == 404
    first, second, missing = rec.spans
    assert body == {"item_id": 42, "trace_id": f"{first.context.trace_id:032x}"}
    assert first.name == second.name == "GET /items/{item_id}"
    assert first.attributes["http.route"] == "/items/{item_id}"  # type: ignore[index]
    assert first.attributes["url.path"] == "/items/42"  # type: ignore[index]
    assert second.attributes["url.query"] == "x=1"  # type: ignore[index]
    # Unmatched: never the raw path, no route attribute.
    assert missing.name == "GET"
    assert "http.route" not in (missing.attributes or {})
    assert missing.attributes["http.response.status_code"] == 404  # type: ignore[index]
    assert missing.status.status_code is StatusCode.UNSET


async def test_route_from_mounted_app_includes_mount_prefix(rec: Recorder) -> None:
    outer = FastAPI()
    outer.mount("/api", fastapi_app())
    app = TracingMiddleware(outer, tracer_provider=rec.provider)
    async with asgi_client(app) as client:
        assert (await client.get("/api/items/3")).status_code == 200
    assert rec.only().name == "GET /api/items/{item_id}"


async def test_explicit_route_key_and_custom_span_name(rec: Recorder) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["asgi_kit.route"] = "/orders/<int:pk>"
        await make_app()(scope, receive, send)

    await call_http(TracingMiddleware(app, tracer_provider=rec.provider), path="/orders/5")
    named = TracingMiddleware(
        app,
        tracer_provider=rec.provider,
        span_name=lambda scope: f"custom {scope['asgi_kit.route']}",
    )
    await call_http(named, path="/orders/6")
    default, custom = rec.spans
    assert default.name == "GET /orders/<int:pk>"
    assert custom.name == "custom /orders/<int:pk>"
    assert custom.attributes["http.route"] == "/orders/<int:pk>"  # type: ignore[index]


async def test_failing_span_name_falls_back(
    rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def bad(scope: Any) -> str:
        raise KeyError("nope")

    app = TracingMiddleware(make_app(), tracer_provider=rec.provider, span_name=bad)
    with caplog.at_level(logging.ERROR, logger="asgi_kit.tracing"):
        assert (await call_http(app)).status == 200
    assert rec.only().name == "GET"
    assert "span_name raised" in caplog.text


async def test_unknown_methods_are_other(rec: Recorder) -> None:
    app = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    await call_http(app, "PROPFIND")
    await call_http(app, "get")
    other, lower = rec.spans
    assert other.name == "HTTP"
    assert other.attributes["http.request.method"] == "_OTHER"  # type: ignore[index]
    assert other.attributes["http.request.method_original"] == "PROPFIND"  # type: ignore[index]
    # Methods are case-sensitive (RFC 9110, semconv): "get" is not GET, and
    # metrics and the access log report it as _OTHER too.
    assert lower.name == "HTTP"
    assert lower.attributes["http.request.method"] == "_OTHER"  # type: ignore[index]
    assert lower.attributes["http.request.method_original"] == "get"  # type: ignore[index]


async def test_known_methods_from_option_and_env(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_KNOWN_METHODS, "GET,PROPFIND")
    from_env = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    explicit = TracingMiddleware(make_app(), tracer_provider=rec.provider, known_methods=["GET"])
    await call_http(from_env, "PROPFIND")
    await call_http(from_env, "POST")
    await call_http(explicit, "PROPFIND")
    methods = [s.attributes["http.request.method"] for s in rec.spans]  # type: ignore[index]
    assert methods == ["PROPFIND", "_OTHER", "_OTHER"]


# --------------------------------------------------------------------------- propagation


async def test_parent_from_traceparent_and_tracestate(rec: Recorder) -> None:
    seen: list[Any] = []
    app = TracingMiddleware(make_app(seen=seen), tracer_provider=rec.provider)
    await call_http(
        app,
        headers=[
            ("traceparent", TRACEPARENT),
            ("tracestate", "vendor=abc,other=1"),
            ("baggage", "tenant=acme"),
        ],
    )
    span = rec.only()
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert span.parent.is_remote
    assert span.context.trace_state.get("vendor") == "abc"
    # The extracted context (baggage included) does not leak past the request.
    assert baggage.get_baggage("tenant") is None


async def test_baggage_reaches_the_app(rec: Recorder) -> None:
    found: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        found.append(baggage.get_baggage("tenant"))
        await make_app()(scope, receive, send)

    await call_http(
        TracingMiddleware(app, tracer_provider=rec.provider), headers={"baggage": "tenant=acme"}
    )
    assert found == ["acme"]


async def test_header_case_does_not_matter_for_extraction(rec: Recorder) -> None:
    app = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    scope = http_scope()
    scope["headers"] = [(b"TraceParent", TRACEPARENT.encode())]
    await call_http(app, scope=scope)
    assert f"{rec.only().context.trace_id:032x}" == TRACE_ID


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
        f"00-{TRACE_ID}-0000000000000000-01",  # all-zero span id
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # forbidden version
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # upper-case hex
        "00-" + "a" * 500,
    ],
)
async def test_malformed_traceparent_starts_a_new_root(rec: Recorder, value: str) -> None:
    app = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    response = await call_http(app, headers={"traceparent": value})
    assert response.status == 200
    span = rec.only()
    assert span.parent is None
    assert f"{span.context.trace_id:032x}" != TRACE_ID


class HeaderPropagator(TextMapPropagator):
    """A minimal custom propagator: ``x-trace: <trace hex>:<span hex>``."""

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = None
    ) -> Context:  # type: ignore[assignment]
        assert getter is not None
        values = getter.get(carrier, "X-Trace")
        if not values:
            return context or Context()
        trace_hex, _, span_hex = values[0].partition(":")
        parent = SpanContext(
            int(trace_hex, 16), int(span_hex, 16), True, TraceFlags(TraceFlags.SAMPLED)
        )
        return trace_api.set_span_in_context(NonRecordingSpan(parent), context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,  # type: ignore[assignment]
    ) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return {"x-trace"}


class ExplodingPropagator(HeaderPropagator):
    def extract(self, *args: Any, **kwargs: Any) -> Context:
        raise ValueError("propagator bug")


@pytest.fixture
def restore_propagator() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    try:
        yield
    finally:
        propagate.set_global_textmap(saved)


@pytest.mark.usefixtures("restore_propagator")
async def test_globally_configured_propagator_is_used(rec: Recorder) -> None:
    propagate.set_global_textmap(HeaderPropagator())
    app = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    await call_http(app, headers={"x-trace": f"{TRACE_ID}:{PARENT_ID}", "traceparent": "junk"})
    span = rec.only()
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT_ID


@pytest.mark.usefixtures("restore_propagator")
async def test_failing_propagator_never_fails_the_request(rec: Recorder) -> None:
    propagate.set_global_textmap(ExplodingPropagator())
    app = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    assert (await call_http(app, headers={"x-trace": "zz"})).status == 200
    assert rec.only().parent is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    traceparent=st.one_of(
        st.text(max_size=120),
        st.builds(
            lambda v, t, s, f: f"{v}-{t}-{s}-{f}",
            st.text("0123456789abcdefABCDEF-", max_size=3),
            st.text("0123456789abcdef", max_size=34),
            st.text("0123456789abcdef", max_size=18),
            st.text("0123456789abcdef-", max_size=4),
        ),
    ),
    tracestate=st.text(max_size=600),
    extra=st.binary(max_size=64),
    host=st.one_of(
        st.binary(max_size=40), st.from_regex(rb"\A\[?[0-9a-f:.]{0,20}\]?:?[0-9]{0,7}\Z")
    ),
)
def test_hostile_propagation_headers_never_fail(
    traceparent: str, tracestate: str, extra: bytes, host: bytes
) -> None:
    rec = Recorder()
    app = TracingMiddleware(make_app(), tracer_provider=rec.provider, traceresponse=True)
    headers = [
        (b"traceparent", traceparent.encode("utf-8", "surrogateescape")),
        (b"tracestate", tracestate.encode("utf-8", "surrogateescape")),
        (b"baggage", extra),
        (b"traceparent", extra),
        (b"host", host),
        (b"user-agent", extra),
    ]
    response = asyncio.run(call_http(app, headers=headers))
    assert response.status == 200
    assert len(rec.spans) == 1


# --------------------------------------------------------------------------- errors


async def test_5xx_sets_error_status(rec: Recorder) -> None:
    app = TracingMiddleware(make_app(status=503), tracer_provider=rec.provider)
    await call_http(app)
    span = rec.only()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "503"  # type: ignore[index]


async def test_4xx_is_not_a_server_error(rec: Recorder) -> None:
    app = TracingMiddleware(make_app(status=404), tracer_provider=rec.provider)
    await call_http(app)
    span = rec.only()
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})


async def test_exception_is_recorded_and_reraised(rec: Recorder) -> None:
    api = fastapi_app()
    app = TracingMiddleware(api, tracer_provider=rec.provider)
    with pytest.raises(RuntimeError, match="kaput"):
        await call_http(app, path="/boom")
    span = rec.only()
    assert span.name == "GET /boom"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RuntimeError: kaput"
    assert span.attributes["error.type"] == "RuntimeError"  # type: ignore[index]
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "RuntimeError"  # type: ignore[index]
    assert event.attributes["exception.message"] == "kaput"  # type: ignore[index]


class Oops(Exception):
    pass


async def test_exception_after_response_start(rec: Recorder) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise Oops("mid-stream")

    with pytest.raises(Oops):
        await call_http(TracingMiddleware(app, tracer_provider=rec.provider))
    span = rec.only()
    assert span.attributes["http.response.status_code"] == 200  # type: ignore[index]
    assert span.attributes["error.type"] == f"{__name__}.Oops"  # type: ignore[index]
    assert span.status.status_code is StatusCode.ERROR


async def test_fastapi_503_response(rec: Recorder) -> None:
    app = TracingMiddleware(fastapi_app(), tracer_provider=rec.provider)
    async with asgi_client(app) as client:
        assert (await client.get("/fail")).status_code == 503
    span = rec.only()
    assert span.name == "GET /fail"
    assert span.status.status_code is StatusCode.ERROR


async def test_concurrent_requests_keep_their_own_sizes(rec: Recorder) -> None:
    """The response-size race of the anchor: per-request state never lives on self."""
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        size = int(scope["path"].strip("/"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * size, "more_body": True})
        await gate.wait()
        await send({"type": "http.response.body", "body": b"y" * size})

    wrapped = TracingMiddleware(app, tracer_provider=rec.provider)

    async def release() -> None:
        await asyncio.sleep(0.01)
        gate.set()

    await asyncio.gather(
        call_http(wrapped, path="/10"), call_http(wrapped, path="/1000"), release()
    )
    sizes = {
        s.attributes["url.path"]: s.attributes["http.response.body.size"]  # type: ignore[index]
        for s in rec.spans
    }
    assert sizes == {"/10": 20, "/1000": 2000}


# --------------------------------------------------------------------------- exclusions


async def test_excluded_paths_exact_and_glob(rec: Recorder) -> None:
    app = TracingMiddleware(
        make_app(), tracer_provider=rec.provider, excluded_paths=["/health", "/static/*"]
    )
    for path in ("/health", "/static/app.js", "/static/img/a.png", "/healthz", "/api"):
        assert (await call_http(app, path=path)).status == 200
    assert sorted(s.attributes["url.path"] for s in rec.spans) == [  # type: ignore[index]
        "/api",
        "/healthz",
    ]


async def test_excluded_urls_option_and_env(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_EXCLUDED_URLS_GENERIC, "generic")
    monkeypatch.setenv(ENV_EXCLUDED_URLS, " ")  # blank: falls back to the generic one
    generic = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    monkeypatch.setenv(ENV_EXCLUDED_URLS, "ping,^http://internal\\.example/")
    specific = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    explicit = TracingMiddleware(make_app(), tracer_provider=rec.provider, excluded_urls=["/x"])

    await call_http(generic, path="/generic/1")  # excluded by the fallback variable
    await call_http(generic, path="/ping")  # traced: generic only has "generic"
    await call_http(specific, path="/generic/2")  # traced: the ASGI variable wins
    await call_http(specific, path="/api/ping")  # excluded (searched, not anchored)
    await call_http(specific, path="/a", headers={"host": "internal.example"})  # excluded
    await call_http(specific, path="/a", headers={"host": "public.example"})  # traced
    await call_http(explicit, path="/ping")  # traced: the option replaces the env
    await call_http(explicit, path="/x/1")  # excluded
    traced = [s.attributes["url.path"] for s in rec.spans]  # type: ignore[index]
    assert traced == ["/ping", "/generic/2", "/a", "/ping"]


# --------------------------------------------------------------------------- headers


async def test_header_capture_from_options(rec: Recorder) -> None:
    response_headers = [
        (b"Content-Type", b"text/plain"),  # Django-style case
        (b"x-cache", b"HIT"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    app = TracingMiddleware(
        make_app(headers=response_headers),
        tracer_provider=rec.provider,
        capture_request_headers=["x-tenant", "accept.*"],
        capture_response_headers="content-type, set-cookie",
        sanitize_headers=["set-cookie", "authorization"],
    )
    await call_http(
        app,
        headers=[
            ("X-Tenant", "acme"),
            ("accept", "text/html"),
            ("accept-language", "de"),
            ("accept-language", "en"),
            ("x-other", "nope"),
        ],
    )
    attrs = dict(rec.only().attributes or {})
    assert attrs["http.request.header.x-tenant"] == ("acme",)
    assert attrs["http.request.header.accept"] == ("text/html",)
    assert attrs["http.request.header.accept-language"] == ("de", "en")
    assert "http.request.header.x-other" not in attrs
    assert attrs["http.response.header.content-type"] == ("text/plain",)
    assert attrs["http.response.header.set-cookie"] == ("[REDACTED]", "[REDACTED]")
    assert "http.response.header.x-cache" not in attrs


async def test_header_capture_from_env_and_option_precedence(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_CAPTURE_REQUEST, "authorization,x-.*")
    monkeypatch.setenv(ENV_CAPTURE_RESPONSE, "x-cache")
    monkeypatch.setenv(ENV_SANITIZE, "authorization")
    from_env = TracingMiddleware(
        make_app(headers=[(b"x-cache", b"MISS")]), tracer_provider=rec.provider
    )
    explicit = TracingMiddleware(
        make_app(headers=[(b"x-cache", b"MISS")]),
        tracer_provider=rec.provider,
        capture_request_headers=[],
        sanitize_headers=[],
        capture_response_headers=["x-cache"],
    )
    headers = {"authorization": "Bearer t", "x-id": "7"}
    await call_http(from_env, headers=headers)
    await call_http(explicit, headers=headers)
    env_attrs, explicit_attrs = (dict(s.attributes or {}) for s in rec.spans)
    assert env_attrs["http.request.header.authorization"] == ("[REDACTED]",)
    assert env_attrs["http.request.header.x-id"] == ("7",)
    assert env_attrs["http.response.header.x-cache"] == ("MISS",)
    assert not any(k.startswith("http.request.header.") for k in explicit_attrs)
    assert explicit_attrs["http.response.header.x-cache"] == ("MISS",)


# --------------------------------------------------------------------------- hooks


async def test_hooks_receive_span_scope_and_messages(rec: Recorder) -> None:
    messages: list[str] = []

    def on_request(span: Any, scope: Any) -> None:
        span.set_attribute("app.tenant", scope["path"].split("/")[1])

    def on_response(span: Any, message: Any) -> None:
        messages.append(message["type"])
        if message["type"] == "http.response.start":
            span.set_attribute("app.status_seen", message["status"])

    app = TracingMiddleware(
        make_app(body=[b"a", b"b"]),
        tracer_provider=rec.provider,
        server_request_hook=on_request,
        client_response_hook=on_response,
    )
    await call_http(app, path="/acme/orders")
    attrs = rec.only().attributes or {}
    assert attrs["app.tenant"] == "acme"
    assert attrs["app.status_seen"] == 200
    assert messages == ["http.response.start", "http.response.body", "http.response.body"]


async def test_failing_hooks_are_logged_not_raised(
    rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> None:
        raise ZeroDivisionError("hook bug")

    app = TracingMiddleware(
        make_app(),
        tracer_provider=rec.provider,
        server_request_hook=broken,
        client_response_hook=broken,
    )
    with caplog.at_level(logging.ERROR, logger="asgi_kit.tracing"):
        response = await call_http(app)
    assert (response.status, response.body) == (200, b"hello")
    assert rec.only().status.status_code is StatusCode.UNSET
    assert "server_request_hook raised" in caplog.text
    assert "client_response_hook raised" in caplog.text


# --------------------------------------------------------------------------- traceresponse


async def test_traceresponse_header(rec: Recorder) -> None:
    app = TracingMiddleware(
        make_app(headers=[(b"TraceResponse", b"stale")]),
        tracer_provider=rec.provider,
        traceresponse=True,
    )
    response = await call_http(app, headers={"traceparent": TRACEPARENT})
    span = rec.only()
    assert response.header_all("traceresponse") == [f"00-{TRACE_ID}-{span.context.span_id:016x}-01"]
    plain = TracingMiddleware(make_app(), tracer_provider=rec.provider)
    assert (await call_http(plain)).header("traceresponse") is None


async def test_sampled_out_requests_skip_the_work_but_keep_context() -> None:
    rec = Recorder(sampler=ALWAYS_OFF)
    seen: list[Any] = []
    app = TracingMiddleware(make_app(seen=seen), tracer_provider=rec.provider)
    original_send: list[Any] = []

    async def send(message: Any) -> None:
        pass

    original_send.append(send)
    scope = http_scope(headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    await app(scope, receive, send)
    current, send_seen = seen[0]
    assert send_seen is send  # nothing wrapped
    assert f"{current.get_span_context().trace_id:032x}" == TRACE_ID
    assert rec.spans == []

    with_header = TracingMiddleware(make_app(), tracer_provider=rec.provider, traceresponse=True)
    response = await call_http(
        with_header, headers={"traceparent": TRACEPARENT.replace("-01", "-00")}
    )
    assert response.header("traceresponse") is not None
    assert response.header("traceresponse").startswith(f"00-{TRACE_ID}-")  # type: ignore[union-attr]
    assert response.header("traceresponse").endswith("-00")  # type: ignore[union-attr]


# --------------------------------------------------------------------------- websocket


async def test_websocket_connection_gets_one_span(rec: Recorder) -> None:
    app = TracingMiddleware(fastapi_app(), tracer_provider=rec.provider)
    scope = websocket_scope("/ws/lobby", headers={"traceparent": TRACEPARENT})
    async with websocket(app, scope=scope) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(2))["type"] == "websocket.accept"
        await ws.send_input({"type": "websocket.receive", "text": "hi"})
        assert (await ws.receive_output(2))["text"] == "lobby:hi"
        assert (await ws.receive_output(2))["type"] == "websocket.close"
        await ws.wait(2)
    span = rec.only()
    assert span.name == "GET /ws/{room}"
    assert span.kind is SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    attrs = span.attributes or {}
    assert attrs["url.scheme"] == "ws"
    assert attrs["network.protocol.name"] == "websocket"
    assert attrs["http.request.method"] == "GET"
    assert attrs["http.route"] == "/ws/{room}"
    assert attrs["http.response.status_code"] == 101


async def test_websocket_refused_before_accept(rec: Recorder) -> None:
    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})

    app = TracingMiddleware(refuse, tracer_provider=rec.provider)
    async with websocket(app, scope=websocket_scope("/ws")) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(2))["type"] == "websocket.close"
        await ws.wait(2)
    span = rec.only()
    assert span.name == "GET"
    assert span.attributes["http.response.status_code"] == 403  # type: ignore[index]


# --------------------------------------------------------------------------- providers


@pytest.mark.usefixtures("global_slot")
async def test_no_sdk_is_a_pass_through_and_later_sdk_is_picked_up() -> None:
    seen: list[Any] = []
    app = TracingMiddleware(make_app(seen=seen))

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    await app(http_scope(headers={"traceparent": TRACEPARENT}), receive, send)
    current, send_seen = seen[0]
    assert send_seen is send  # no wrapper, no span, no context work
    assert not current.get_span_context().is_valid

    # The usual order: middleware built at import, SDK installed at startup.
    rec = Recorder()
    trace_api.set_tracer_provider(rec.provider)
    await call_http(app, path="/after")
    span = rec.only()
    assert span.attributes["url.path"] == "/after"  # type: ignore[index]
    assert f"{span.context.trace_id:032x}" != TRACE_ID


@pytest.mark.usefixtures("global_slot")
async def test_explicit_proxy_provider_follows_the_global() -> None:
    proxy = trace_api.get_tracer_provider()
    assert isinstance(proxy, ProxyTracerProvider)
    app = TracingMiddleware(make_app(), tracer_provider=proxy)
    await call_http(app)
    rec = Recorder()
    trace_api.set_tracer_provider(rec.provider)
    await call_http(app)
    assert len(rec.spans) == 1


@pytest.mark.usefixtures("global_slot")
async def test_global_noop_provider_and_explicit_noop_are_pass_through() -> None:
    trace_api.set_tracer_provider(NoOpTracerProvider())
    seen: list[Any] = []
    for app in (
        TracingMiddleware(make_app(seen=seen)),
        TracingMiddleware(make_app(seen=seen), tracer_provider=NoOpTracerProvider()),
    ):

        async def send(message: Any) -> None:
            pass

        async def receive() -> Any:
            return {"type": "http.disconnect"}

        await app(http_scope(), receive, send)
        assert seen[-1][1] is send


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("kwargs", "error", "option"),
    [
        ({"tracer_provider": object()}, TypeError, "tracer_provider"),
        ({"excluded_paths": "/health"}, TypeError, "excluded_paths"),
        ({"excluded_paths": ["health"]}, ValueError, "excluded_paths"),
        ({"server_request_hook": 3}, TypeError, "server_request_hook"),
        ({"client_response_hook": "x"}, TypeError, "client_response_hook"),
        ({"span_name": "GET"}, TypeError, "span_name"),
        ({"traceresponse": "yes"}, TypeError, "traceresponse"),
        ({"excluded_urls": ["(unclosed"]}, ValueError, "excluded_urls"),
        ({"capture_request_headers": ["[bad"]}, ValueError, "capture_request_headers"),
        ({"sanitize_headers": [1]}, TypeError, "sanitize_headers"),
        ({"known_methods": "GET"}, TypeError, "known_methods"),
    ],
)
def test_invalid_options_name_the_option(
    kwargs: dict[str, Any], error: type[Exception], option: str
) -> None:
    with pytest.raises(error, match=option):
        TracingMiddleware(make_app(), **kwargs)


def test_invalid_env_regex_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_EXCLUDED_URLS, "(oops")
    with pytest.raises(ValueError, match=ENV_EXCLUDED_URLS):
        TracingMiddleware(make_app())


# --------------------------------------------------------------------------- examples


async def test_raw_example_names_its_route() -> None:
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "tracing_raw.py"
    namespace = runpy.run_path(str(example))
    exporter = InMemorySpanExporter()
    namespace["provider"].add_span_processor(SimpleSpanProcessor(exporter))
    response = await call_http(
        namespace["app"], path="/orders/7", headers={"traceparent": TRACEPARENT}
    )
    assert response.status == 200
    assert response.header("traceresponse").startswith(f"00-{TRACE_ID}-")  # type: ignore[union-attr]
    [span] = exporter.get_finished_spans()
    assert span.name == "GET /orders/{order_id}"


@pytest.mark.usefixtures("global_slot")
async def test_provider_named_by_environment_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_TRACER_PROVIDER", "sdk_tracer_provider")
    seen: list[Any] = []
    app = TracingMiddleware(make_app(seen=seen))
    await call_http(app)
    assert isinstance(trace_api._TRACER_PROVIDER, TracerProvider)
    current, _ = seen[0]
    assert isinstance(current, ReadableSpan)  # an SDK span, not a no-op one
    assert current.name == "GET"


@pytest.mark.usefixtures("global_slot")
async def test_global_provider_slot_is_where_the_api_keeps_it(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fails when opentelemetry-api moves ``_TRACER_PROVIDER``: the middleware
    # then falls back to the slower public get_tracer_provider(); look again.
    from asgi_kit import tracing

    assert not tracing._SLOT_MOVED
    assert tracing._installed_global_provider() is None
    trace_api.set_tracer_provider(rec.provider)
    assert trace_api._TRACER_PROVIDER is rec.provider
    assert tracing._installed_global_provider() is rec.provider
    # The public fallback gives the same answers.
    monkeypatch.setattr(tracing, "_SLOT_MOVED", True)
    assert tracing._installed_global_provider() is rec.provider
    await call_http(TracingMiddleware(make_app()))
    assert rec.only().name == "GET"
