"""The real TracingMiddleware outside MetricsMiddleware (the order docs/stack.md recommends).

Used by the end-to-end exemplar test: every duration observation made inside
the request's span must carry that span's trace id, visible to an OpenMetrics
scrape.  The app's own registry keeps the scrape small and independent.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from asgi_kit import MetricsMiddleware, TracingMiddleware

from .tracing_routes import build_api

registry = CollectorRegistry()
app = TracingMiddleware(
    MetricsMiddleware(build_api(), registry=registry, metrics_path="/metrics"),
    tracer_provider=TracerProvider(),
    excluded_paths=["/metrics"],
)
