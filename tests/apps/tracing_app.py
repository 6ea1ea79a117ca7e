"""A FastAPI app behind TracingMiddleware for end-to-end tests under real servers.

The middleware is created before any SDK exists (as at import time in a real
deployment) and the global tracer provider is installed afterwards, so the
test also proves the lazy look-up of the global provider.  Finished spans are
kept in memory and served as JSON on ``/spans`` (itself excluded from tracing).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asgi_kit import TracingMiddleware

from .tracing_routes import build_api

api = build_api()


@api.get("/spans")
async def spans() -> list[dict[str, Any]]:
    return [
        {
            "name": span.name,
            "kind": span.kind.name,
            "trace_id": f"{span.context.trace_id:032x}",
            "span_id": f"{span.context.span_id:016x}",
            "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
            "status": span.status.status_code.name,
            "attributes": dict(span.attributes or {}),
        }
        for span in exporter.get_finished_spans()
    ]


app = TracingMiddleware(api, excluded_paths=["/spans"], traceresponse=True)

# Installed after the middleware exists, as a startup hook would.
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
