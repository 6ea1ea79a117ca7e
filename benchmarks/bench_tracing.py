"""TracingMiddleware against opentelemetry-instrumentation-asgi (and Starlette's).

Two settings users run in production:

* no SDK installed: the global tracer provider is the API's default, so every
  span is a no-op and the middleware should cost next to nothing;
* an SDK ``TracerProvider`` whose only span processor drops every span, so
  the figure is the instrumentation's own cost (span creation, attributes,
  propagation) without exporter noise.

The request carries a W3C ``traceparent`` so context extraction is exercised.
"""

from __future__ import annotations

from typing import Any

from asgi_kit import TracingMiddleware

from .driver import App, Scenario, json_app, make_scope, optional

TRACEPARENT = (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")


def _sdk_provider() -> Any:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    class Drop(SpanProcessor):
        """Receives every span and keeps none (no export cost)."""

    provider = TracerProvider()
    provider.add_span_processor(Drop())
    return provider


def _otel_asgi(app: App, provider: Any = None, **kwargs: Any) -> App:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(app, tracer_provider=provider, **kwargs)


def _starlette(app: App, provider: Any = None) -> App:
    from starlette.middleware.opentelemetry import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(app, tracer_provider=provider)


def scenarios() -> list[Scenario]:
    bare = json_app()
    scope = make_scope("GET", "/items/42", extra_headers=[TRACEPARENT])
    provider = _sdk_provider()
    return [
        Scenario(
            "tracing, no SDK (global default provider)",
            bare=bare,
            ours=TracingMiddleware(bare),
            anchors={
                "opentelemetry-instrumentation-asgi": optional(lambda: _otel_asgi(bare)),
                "starlette OpenTelemetryMiddleware": optional(lambda: _starlette(bare)),
            },
            scope=scope,
            goal=0.3,
        ),
        Scenario(
            "tracing, SDK with a dropping span processor",
            bare=bare,
            ours=TracingMiddleware(bare, tracer_provider=provider),
            anchors={
                "opentelemetry-instrumentation-asgi": optional(lambda: _otel_asgi(bare, provider)),
                "opentelemetry-instrumentation-asgi, exclude_spans": optional(
                    lambda: _otel_asgi(bare, provider, exclude_spans=["receive", "send"])
                ),
                "starlette OpenTelemetryMiddleware": optional(lambda: _starlette(bare, provider)),
            },
            scope=scope,
            goal=0.7,
        ),
    ]
