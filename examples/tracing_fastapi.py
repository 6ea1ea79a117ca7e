"""TracingMiddleware on a FastAPI app, with the OpenTelemetry SDK printing spans.

Run: ``python examples/tracing_fastapi.py`` then ``curl http://127.0.0.1:8000/items/1``
(needs ``opentelemetry-sdk``, ``fastapi`` and ``uvicorn``).  Each request prints
one SERVER span named ``GET /items/{item_id}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from asgi_kit import TracingMiddleware


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The SDK is set up at startup, after the middleware was added: the
    # middleware picks the global provider up on the first request after this.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    yield
    provider.shutdown()


def _fastapi(**kwargs: Any) -> FastAPI:
    # FastAPI releases with built-in telemetry would start a second SERVER span.
    try:
        return FastAPI(telemetry={"tracing": False}, **kwargs)
    except TypeError:
        return FastAPI(**kwargs)


app = _fastapi(lifespan=lifespan)
app.add_middleware(
    TracingMiddleware,
    excluded_paths=["/health"],
    capture_request_headers=["x-tenant"],
    traceresponse=True,
)


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, Any]:
    trace_id = trace.get_current_span().get_span_context().trace_id
    return {"item_id": item_id, "trace_id": f"{trace_id:032x}"}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
