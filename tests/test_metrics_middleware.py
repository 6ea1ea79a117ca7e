"""MetricsMiddleware (asgi_kit.metrics.middleware), in process, read with prometheus-client."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import string
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from asgi_kit import MetricsMiddleware, metrics_app
from asgi_kit.metrics import DEFAULT_BUCKETS, OVERFLOW_ROUTE, UNMATCHED_ROUTE
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import asgi_client, call_http, http_scope, websocket, websocket_scope
from ._support.metrics import (
    ACTIVE,
    DURATION,
    REQ_SIZE,
    RESP_SIZE,
    instrumented,
    make_fastapi,
    plain_app,
    samples,
    scrape,
    series,
    value,
)

# --------------------------------------------------------------------------- HTTP metrics


async def test_series_after_real_fastapi_routing() -> None:
    app, registry = instrumented()
    async with asgi_client(app) as client:
        for i in range(3):
            assert (await client.get(f"/items/{i}")).status_code == 200
        assert (await client.get("/items/notanint")).status_code == 422
        assert (await client.get("/sub/pages/7")).text == "sub"
        assert (await client.get("/teapot")).status_code == 418
        assert (await client.post("/items/1")).status_code == 405
    found = await samples(registry)
    count = f"{DURATION}_count"
    assert value(found, count, method="GET", route="/items/{item_id}", status_code="200") == 3
    assert value(found, count, method="GET", route="/items/{item_id}", status_code="422") == 1
    assert value(found, count, method="GET", route="/sub/pages/{page}", status_code="200") == 1
    assert value(found, count, method="GET", route="/teapot", status_code="418") == 1
    # Starlette's partial match (405) still names the route.
    assert value(found, count, method="POST", route="/items/{item_id}", status_code="405") == 1
    assert value(found, ACTIVE, method="GET") == 0
    # OTel's recommended buckets, in seconds.
    les = [s.labels["le"] for s in found if s.name == f"{DURATION}_bucket"][: len(DEFAULT_BUCKETS)]
    assert [float(le) for le in les] == list(DEFAULT_BUCKETS)
    # Exactly the metric families the design lists (plus the WebSocket ones, unused here).
    names = {s.name.rsplit("_", 1)[0] for s in found if s.name.endswith("_count")}
    assert names == {DURATION, REQ_SIZE, RESP_SIZE}


async def test_unmatched_paths_share_one_label_and_cardinality_stays_bounded() -> None:
    app, registry = instrumented()
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-._~%"
    for _ in range(10_000):
        path = "/" + "/".join(
            "".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(rng.randint(1, 4))
        )
        method = rng.choice(["GET", "POST", "PROPFIND", "get", "HEAD"])
        response = await call_http(app, method, path)
        assert response.status in (404, 405, 307)
    found = await samples(registry)
    duration_series = series(found, f"{DURATION}_count")
    # 10,000 random paths: a handful of series (method x status), all "<unmatched>".
    assert len(duration_series) <= 10
    routes = {dict(s)["route"] for s in duration_series}
    assert routes == {UNMATCHED_ROUTE}
    methods = {dict(s)["method"] for s in duration_series}
    assert methods <= {"GET", "POST", "HEAD", "_OTHER"}
    assert "_OTHER" in methods


async def test_group_paths_false_uses_raw_path_only_for_matched_routes() -> None:
    app, registry = instrumented(group_paths=False, max_routes=5)
    async with asgi_client(app) as client:
        for i in range(3):
            await client.get(f"/items/{i}")
        for i in range(20):
            await client.get(f"/scan/{i}")
        for i in range(3, 10):
            await client.get(f"/items/{i}")
    found = await samples(registry)
    routes = {dict(s)["route"] for s in series(found, f"{DURATION}_count")}
    assert {"/items/0", "/items/1", "/items/2"} <= routes
    assert UNMATCHED_ROUTE in routes
    assert OVERFLOW_ROUTE in routes
    # max_routes bounds the distinct values no matter what.
    assert len(routes - {UNMATCHED_ROUTE, OVERFLOW_ROUTE}) == 5


async def test_route_resolver_overrides_and_errors_count_as_unmatched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    seen_status: list[int] = []

    def resolver(scope: Scope) -> str | None:
        if scope["path"].startswith("/bad"):
            raise KeyError("bug")
        if scope["path"].startswith("/api/"):
            return "/api/{rest}"
        return None

    app = MetricsMiddleware(plain_app, registry=registry, route_resolver=resolver)
    for path in ("/api/a", "/api/b", "/other", "/bad"):
        seen_status.append((await call_http(app, path=path)).status)
    assert seen_status == [200] * 4
    found = await samples(registry)
    count = f"{DURATION}_count"
    assert value(found, count, route="/api/{rest}") == 2
    assert value(found, count, route=UNMATCHED_ROUTE) == 2
    assert "route_resolver raised" in caplog.text


async def test_body_sizes_are_the_bytes_streamed() -> None:
    app, registry = instrumented()
    async with asgi_client(app) as client:
        response = await client.get("/stream")
        assert len(response.content) == 3000
        assert "content-length" not in response.headers
    # Request body in three chunks, read by the app.
    payload = b'{"a": 1, "b": 2, "c": "' + b"z" * 3000 + b'"}'
    chunks = [payload[:10], payload[10:2000], payload[2000:]]
    response = await call_http(app, "POST", "/upload", {"content-type": "application/json"}, chunks)
    assert response.status == 200
    found = await samples(registry)
    assert value(found, f"{RESP_SIZE}_sum", route="/stream") == 3000
    assert value(found, f"{REQ_SIZE}_sum", route="/stream") == 0
    assert value(found, f"{REQ_SIZE}_sum", route="/upload") == len(payload)
    assert value(found, f"{RESP_SIZE}_sum", route="/upload") == len(response.body)
    # The empty request body lands in the le="0" bucket.
    assert value(found, f"{REQ_SIZE}_bucket", route="/stream", le="0.0") == 1


async def test_body_size_is_per_request_under_concurrency() -> None:
    registry = CollectorRegistry()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        size = int(scope["path"].strip("/"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(size):
            await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    app = MetricsMiddleware(slow_app, registry=registry)
    await asyncio.gather(*(call_http(app, path=f"/{n}") for n in (1, 5, 50, 500)))
    found = await samples(registry)
    buckets = {s.labels["le"]: s.value for s in found if s.name == f"{RESP_SIZE}_bucket"}
    # One observation per bucket boundary crossed: 1 and 5 ≤ 128, 50 ≤ 128, 500 ≤ 512.
    assert buckets["128.0"] == 3
    assert buckets["512.0"] == 4
    assert value(found, f"{RESP_SIZE}_sum") == 556


async def test_active_requests_while_running_and_after_exception() -> None:
    registry = CollectorRegistry()
    inside: list[float | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        inside.append(registry.get_sample_value(ACTIVE, {"method": scope["method"]}))
        if scope["path"] == "/raise":
            raise ValueError("app bug")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = MetricsMiddleware(app, registry=registry)
    await call_http(wrapped, "PUT", "/")
    with pytest.raises(ValueError, match="app bug"):
        await call_http(wrapped, "PUT", "/raise")
    assert inside == [1.0, 1.0]
    found = await samples(registry)
    assert value(found, ACTIVE, method="PUT") == 0
    assert value(found, f"{DURATION}_count", status_code="204") == 1
    # An exception before the response: the server answers 500, and so does the label.
    assert value(found, f"{DURATION}_count", status_code="500") == 1


async def test_exception_through_fastapi_is_counted_as_500() -> None:
    app, registry = instrumented()
    async with asgi_client(app) as client:
        with pytest.raises(RuntimeError):
            await client.get("/boom")
    found = await samples(registry)
    assert value(found, f"{DURATION}_count", route="/boom", status_code="500") == 1
    assert value(found, ACTIVE, method="GET") == 0


async def test_active_requests_after_client_disconnect() -> None:
    registry = CollectorRegistry()
    started = asyncio.Event()

    async def long_poll(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        while (await receive())["type"] != "http.disconnect":
            pass

    app = MetricsMiddleware(long_poll, registry=registry)
    messages: list[Message] = [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]
    gate = asyncio.Event()

    async def receive() -> Message:
        if len(messages) == 1:
            await gate.wait()
        return messages.pop(0)

    async def send(message: Message) -> None:
        raise AssertionError("no response expected")

    task = asyncio.create_task(app(http_scope(), receive, send))
    await started.wait()
    await asyncio.sleep(0)
    assert registry.get_sample_value(ACTIVE, {"method": "GET"}) == 1
    gate.set()
    await task
    assert registry.get_sample_value(ACTIVE, {"method": "GET"}) == 0
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "status_code": "499"}
    assert registry.get_sample_value(f"{DURATION}_count", labels) == 1

    # A send that fails because the client went away mid-stream.
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b", "more_body": True})

    async def broken_send(message: Message) -> None:
        if message.get("body") == b"b":
            raise OSError("connection reset")

    with pytest.raises(OSError):
        await MetricsMiddleware(streaming, registry=registry)(http_scope(), receive, broken_send)
    assert registry.get_sample_value(ACTIVE, {"method": "GET"}) == 0

    # A cancelled request task (how some servers stop an app when the client leaves).
    cancelled_started = asyncio.Event()

    async def hang(scope: Scope, receive: Receive, send: Send) -> None:
        cancelled_started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(
        MetricsMiddleware(hang, registry=registry)(http_scope(), receive, send)
    )
    await cancelled_started.wait()
    assert registry.get_sample_value(ACTIVE, {"method": "GET"}) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry.get_sample_value(ACTIVE, {"method": "GET"}) == 0
    assert registry.get_sample_value(f"{DURATION}_count", labels) == 2


async def test_duration_ends_with_the_last_body_message() -> None:
    registry = CollectorRegistry()

    async def with_background_work(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await asyncio.sleep(0.2)  # e.g. Starlette BackgroundTasks

    await call_http(MetricsMiddleware(with_background_work, registry=registry))
    total = registry.get_sample_value(
        f"{DURATION}_sum", {"method": "GET", "route": UNMATCHED_ROUTE, "status_code": "200"}
    )
    assert total is not None and total < 0.15


async def test_excluded_paths_and_lifespan_pass_through() -> None:
    registry = CollectorRegistry()
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])
        if scope["type"] == "lifespan":
            return
        await plain_app(scope, receive, send)

    wrapped = MetricsMiddleware(app, registry=registry, exclude_paths=["/metrics", "/static/*"])
    await call_http(wrapped, path="/metrics")
    await call_http(wrapped, path="/static/app.js")
    await wrapped({"type": "lifespan"}, _never, _never_send)
    assert calls == ["http", "http", "lifespan"]
    assert not series(await samples(registry), f"{DURATION}_count")
    await call_http(wrapped, path="/counted")
    assert len(series(await samples(registry), f"{DURATION}_count")) == 1


async def _never() -> Message:
    raise AssertionError("receive not expected")


async def _never_send(message: Message) -> None:
    raise AssertionError("send not expected")


async def test_asgi2_app_is_wrapped() -> None:
    registry = CollectorRegistry()

    class Legacy:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b"legacy"})

    response = await call_http(MetricsMiddleware(Legacy, registry=registry))
    assert (response.status, response.body) == (201, b"legacy")
    found = await samples(registry)
    assert value(found, f"{RESP_SIZE}_sum", status_code="201") == 6


async def test_pathsend_and_zerocopysend_sizes() -> None:
    registry = CollectorRegistry()

    async def files(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"Content-Length", b"1234")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/path":
            await send({"type": "http.response.pathsend", "path": "/tmp/x"})
        else:
            await send({"type": "http.response.zerocopysend", "file": 3, "count": 99})

    app = MetricsMiddleware(files, registry=registry)
    await call_http(app, path="/path")
    await call_http(app, path="/zero")
    assert (
        registry.get_sample_value(
            f"{RESP_SIZE}_sum", {"method": "GET", "route": UNMATCHED_ROUTE, "status_code": "200"}
        )
        == 1234 + 99
    )


# --------------------------------------------------------------------------- registries


async def test_namespace_and_separate_registries_do_not_collide() -> None:
    one, two = CollectorRegistry(), CollectorRegistry()
    a = MetricsMiddleware(plain_app, registry=one)
    b = MetricsMiddleware(plain_app, registry=two)
    c = MetricsMiddleware(plain_app, registry=one, namespace="shop")
    await call_http(a)
    await call_http(b)
    await call_http(b)
    await call_http(c)
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "status_code": "200"}
    assert one.get_sample_value(f"{DURATION}_count", labels) == 1
    assert two.get_sample_value(f"{DURATION}_count", labels) == 2
    assert one.get_sample_value(f"shop_{DURATION}_count", labels) == 1


async def test_two_instances_on_one_registry_share_metrics() -> None:
    registry = CollectorRegistry()
    a = MetricsMiddleware(plain_app, registry=registry)
    b = MetricsMiddleware(plain_app, registry=registry)
    await call_http(a)
    await call_http(b)
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "status_code": "200"}
    assert registry.get_sample_value(f"{DURATION}_count", labels) == 2
    with pytest.raises(ValueError, match="different buckets"):
        MetricsMiddleware(plain_app, registry=registry, buckets=(0.1, 1.0))


def test_clash_with_a_foreign_metric_is_a_clear_error() -> None:
    registry = CollectorRegistry()
    Counter("http_server_active_requests", "someone else's", registry=registry)
    with pytest.raises(ValueError, match=r"namespace=''.*another namespace or registry"):
        MetricsMiddleware(plain_app, registry=registry)
    # Nothing half-registered: a namespaced instance still works.
    MetricsMiddleware(plain_app, registry=registry, namespace="ok")


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"registry": object()}, TypeError, "registry"),
        ({"namespace": "bad name"}, ValueError, "namespace"),
        ({"namespace": "1x"}, ValueError, "namespace"),
        ({"buckets": (1.0, 0.5)}, ValueError, "buckets"),
        ({"buckets": ()}, ValueError, "buckets"),
        ({"buckets": "0.1"}, TypeError, "buckets"),
        ({"size_buckets": (1, "x")}, TypeError, "size_buckets"),
        ({"websocket_buckets": (1, 1)}, ValueError, "websocket_buckets"),
        ({"exclude_paths": "/metrics"}, TypeError, "exclude_paths"),
        ({"exclude_paths": ["metrics"]}, ValueError, "exclude_paths"),
        ({"metrics_path": "metrics"}, ValueError, "metrics_path"),
        ({"route_resolver": "x"}, TypeError, "route_resolver"),
        ({"unmatched_route": ""}, ValueError, "unmatched_route"),
        ({"max_routes": 0}, ValueError, "max_routes"),
    ],
)
def test_options_are_validated(options: dict[str, Any], error: type[Exception], match: str) -> None:
    options.setdefault("registry", CollectorRegistry())
    with pytest.raises(error, match=match):
        MetricsMiddleware(plain_app, **options)


# --------------------------------------------------------------------------- exemplars


def span_wrapper(app: Any, provider: TracerProvider) -> Any:
    """A minimal tracing middleware outside MetricsMiddleware: starts a current span."""
    tracer = provider.get_tracer("test")

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        with tracer.start_as_current_span("request"):
            await app(scope, receive, send)

    return wrapper


async def test_exemplars_carry_the_trace_id_in_openmetrics() -> None:
    app, registry = instrumented()
    provider = TracerProvider()
    trace_ids: list[str] = []
    tracer = provider.get_tracer("test")

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        with tracer.start_as_current_span("request") as span:
            trace_ids.append(format(span.get_span_context().trace_id, "032x"))
            await app(scope, receive, send)

    async with asgi_client(traced) as client:
        assert (await client.get("/items/3")).status_code == 200
    status, headers, body = await scrape(registry, accept="application/openmetrics-text")
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text")
    exemplars = [
        s.exemplar
        for fam in openmetrics_families(body.decode())
        for s in fam.samples
        if s.exemplar is not None
    ]
    assert len(exemplars) == 1
    assert exemplars[0].labels == {"trace_id": trace_ids[0]}
    # Classic text format has no exemplars, and the parser accepts it.
    _, headers, body = await scrape(registry)
    assert headers["content-type"].startswith("text/plain")
    assert b"trace_id" not in body
    list(text_string_to_metric_families(body.decode()))


async def test_no_exemplar_without_a_sampled_span_or_when_disabled() -> None:
    app, registry = instrumented()
    await call_http(span_wrapper(app, TracerProvider(sampler=ALWAYS_OFF)), path="/items/1")
    await call_http(app, path="/items/2")  # no span at all
    off, off_registry = instrumented(exemplars=False)
    await call_http(span_wrapper(off, TracerProvider()), path="/items/3")
    for reg in (registry, off_registry):
        _, _, body = await scrape(reg, accept="application/openmetrics-text")
        assert b"trace_id" not in body
        assert b"# EOF" in body


# --------------------------------------------------------------------------- websockets


async def test_websocket_connections_active_and_duration() -> None:
    app, registry = instrumented()
    async with websocket(app, path="/ws/lobby") as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(1))["type"] == "websocket.accept"
        labels = {"route": "/ws/{room}"}
        assert registry.get_sample_value("http_server_websocket_active_connections", labels) == 1
        await ws.send_input({"type": "websocket.receive", "text": "hi"})
        assert (await ws.receive_output(1))["text"] == "hi"
        assert (await ws.receive_output(1))["type"] == "websocket.close"
        await ws.wait(1)
    # A handshake to an unknown path is rejected by the router.
    async with websocket(app, path="/nowhere") as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(1))["type"] == "websocket.close"
        await ws.wait(1)
    found = await samples(registry)
    total = "http_server_websocket_connections_total"
    assert value(found, total, route="/ws/{room}", outcome="accepted") == 1
    assert value(found, total, route=UNMATCHED_ROUTE, outcome="rejected") == 1
    assert value(found, "http_server_websocket_active_connections", route="/ws/{room}") == 0
    assert value(found, "http_server_websocket_connection_duration_seconds_count") == 1
    # WebSockets never show up as HTTP requests.
    assert not series(found, f"{DURATION}_count")


async def test_websocket_active_gauge_after_app_error() -> None:
    registry = CollectorRegistry()

    async def crashing(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("handler bug")

    app = MetricsMiddleware(crashing, registry=registry)
    async with websocket(app, scope=websocket_scope("/chat")) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(1))["type"] == "websocket.accept"
        with pytest.raises(RuntimeError):
            await ws.wait(1)
    assert (
        registry.get_sample_value(
            "http_server_websocket_active_connections", {"route": UNMATCHED_ROUTE}
        )
        == 0
    )


# --------------------------------------------------------------------------- examples


def _load_example(name: str) -> Any:
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_examples_run_on_the_default_registry() -> None:
    raw = _load_example("metrics_raw").app
    fast = _load_example("metrics_fastapi").app  # a second instance: shares the metrics
    labels = {"method": "GET", "route": "/users/{user_id}", "status_code": "200"}
    before = REGISTRY.get_sample_value(f"{DURATION}_count", labels) or 0
    assert (await call_http(raw, path="/users/7")).status == 200
    assert (await call_http(raw, path="/nope")).status == 404
    async with asgi_client(fast) as client:
        assert (await client.get("/items/5")).json() == {"item_id": 5}
        text = (await client.get("/metrics")).text
    found = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert value(found, f"{DURATION}_count", **labels) == before + 1
    assert value(found, f"{DURATION}_count", route="/items/{item_id}") is not None


async def test_status_enum_is_labelled_as_a_number() -> None:
    registry = CollectorRegistry()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": HTTPStatus.CREATED, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await call_http(MetricsMiddleware(app, registry=registry))
    found = await samples(registry)
    assert value(found, f"{DURATION}_count", status_code="201") == 1


async def test_integration_route_key_wins_and_metrics_app_mounts() -> None:
    registry = CollectorRegistry()

    async def django_like(scope: Scope, receive: Receive, send: Send) -> None:
        # What asgi_kit's Django adapter does after URL resolution.
        scope["asgi_kit.route"] = "/items/<int:pk>"
        await plain_app(scope, receive, send)

    await call_http(MetricsMiddleware(django_like, registry=registry), path="/items/9")
    app = FastAPI()
    app.mount("/internal/metrics", metrics_app(registry))
    async with asgi_client(app) as client:
        response = await client.get("/internal/metrics/")  # a Mount matches below the prefix
    assert response.status_code == 200
    found = [s for f in text_string_to_metric_families(response.text) for s in f.samples]
    assert value(found, f"{DURATION}_count", route="/items/<int:pk>") == 1


_RANDOM_REGISTRY = CollectorRegistry()
_RANDOM_APP = MetricsMiddleware(make_fastapi(), registry=_RANDOM_REGISTRY)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "get", "PURGE", ""]), st.text(max_size=12)),
    path=st.text(max_size=40).map(lambda p: "/" + p).filter(lambda p: p != "/boom"),
)
def test_random_methods_and_paths_keep_labels_bounded(method: str, path: str) -> None:
    response = asyncio.run(call_http(_RANDOM_APP, method, path))
    assert response.status < 500
    found = [
        s
        for f in text_string_to_metric_families(
            asyncio.run(call_http(metrics_app(_RANDOM_REGISTRY))).text
        )
        for s in f.samples
        if s.name == f"{DURATION}_count"
    ]
    allowed_methods = {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}
    allowed_methods |= {"QUERY", "TRACE", "_OTHER"}
    allowed_routes = {UNMATCHED_ROUTE, "/items/{item_id}", "/upload", "/stream", "/boom"}
    allowed_routes |= {"/teapot", "/sub/pages/{page}"}
    assert {s.labels["method"] for s in found} <= allowed_methods
    assert {s.labels["route"] for s in found} <= allowed_routes


async def test_submillisecond_bucket_preset_resolves_fast_requests() -> None:
    from asgi_kit.metrics import SUBMILLISECOND_BUCKETS

    registry = CollectorRegistry()

    async def fast(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = MetricsMiddleware(fast, registry=registry, buckets=SUBMILLISECOND_BUCKETS)
    await call_http(app)
    assert SUBMILLISECOND_BUCKETS[0] == 0.0001 and SUBMILLISECOND_BUCKETS[-1] == 5.0
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "status_code": "200"}
    first = registry.get_sample_value(f"{DURATION}_bucket", {**labels, "le": "0.0001"})
    five_ms = registry.get_sample_value(f"{DURATION}_bucket", {**labels, "le": "0.005"})
    assert first is not None and five_ms == 1
