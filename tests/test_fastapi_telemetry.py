"""What docs/tracing.md says about FastAPI's own OpenTelemetry spans, checked.

FastAPI releases with native telemetry (``FastAPI(telemetry=...)``) start a
SERVER span of their own once a global tracer provider is set, so with
``TracingMiddleware`` a request gets two; ``telemetry={"tracing": False}``
leaves asgi_kit's alone.  A process of its own: the global provider can be set
only once.
"""

from __future__ import annotations

import inspect

import pytest
from fastapi import FastAPI

from ._support.servers import run_python

SCRIPT = """
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

from asgi_kit import TracingMiddleware

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
for options in ({}, {"telemetry": {"tracing": False}}):
    app = FastAPI(**options)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app.add_middleware(TracingMiddleware)
    exporter.clear()
    assert TestClient(app).get("/items/1").status_code == 200
    servers = sorted(
        s.instrumentation_scope.name
        for s in exporter.get_finished_spans()
        if s.kind.name == "SERVER"
    )
    print(",".join(servers))
"""


@pytest.mark.skipif(
    "telemetry" not in inspect.signature(FastAPI.__init__).parameters,
    reason="this FastAPI has no native telemetry",
)
def test_fastapi_native_spans_double_up_unless_tracing_is_off() -> None:
    done = run_python(SCRIPT)
    assert done.returncode == 0, done.stderr[-3000:]
    default, tracing_off = done.stdout.split()
    assert default == "asgi_kit.tracing,fastapi"
    assert tracing_off == "asgi_kit.tracing"
