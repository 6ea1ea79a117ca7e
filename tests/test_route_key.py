"""``scope["asgi_kit.route"]``: how a raw ASGI app names its route for metrics, spans and logs.

docs/metrics.md, docs/tracing.md and docs/logging.md tell raw-ASGI users to set
it before the response starts; here the app does exactly that under the whole
recommended stack (docs/stack.md's order), and all three report the template.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from asgi_kit import (
    AccessLogMiddleware,
    CompressionMiddleware,
    CORSMiddleware,
    MemoryBackend,
    MetricsMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RequestIDMiddleware,
    Rule,
    SessionMiddleware,
    TracingMiddleware,
)

from ._support.asgi import call_http
from ._support.logs import RecordingLogger

HEADERS = [(b"Content-Type", b"text/plain")]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"].startswith("/users/"):
        scope["asgi_kit.route"] = "/users/{user_id}"
    await send(START)
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b"hello"})


async def test_route_key_names_the_route_for_metrics_spans_and_access_events() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    log = RecordingLogger()

    app: Any = CompressionMiddleware(raw_app)
    app = SessionMiddleware(app, secret_key="route-key-test")
    app = RateLimitMiddleware(app, rules=[Rule("100/minute")], backend=MemoryBackend())
    app = CORSMiddleware(app, allow_origins=["https://app.example"])
    app = MetricsMiddleware(app, registry=registry, metrics_path="/metrics")
    app = AccessLogMiddleware(app, logger=log)
    app = TracingMiddleware(app, tracer_provider=provider)
    app = RequestIDMiddleware(app)
    app = ProxyHeadersMiddleware(app, trusted_hosts=["127.0.0.1"])

    for user in ("1", "2", "3"):
        response = await call_http(app, "GET", f"/users/{user}")
        assert response.status == 200
    unrouted = await call_http(app, "GET", "/other")
    assert unrouted.status == 200

    spans = exporter.get_finished_spans()
    routed = [s for s in spans if s.attributes and s.attributes["url.path"] != "/other"]
    assert [s.name for s in routed] == ["GET /users/{user_id}"] * 3
    assert {s.attributes["http.route"] for s in routed if s.attributes} == {"/users/{user_id}"}
    (other,) = [s for s in spans if s not in routed]
    assert other.name == "GET" and "http.route" not in (other.attributes or {})

    assert [e.get("route") for e in log.events] == ["/users/{user_id}"] * 3 + [None]

    scrape = await call_http(app, "GET", "/metrics")
    counts = {
        sample.labels["route"]: sample.value
        for family in text_string_to_metric_families(scrape.text)
        for sample in family.samples
        if sample.name == "http_server_request_duration_seconds_count"
    }
    assert counts == {"/users/{user_id}": 3.0, "<unmatched>": 1.0}
