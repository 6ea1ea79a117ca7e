"""Every asgi_kit middleware on a FastAPI app, in the order docs/stack.md recommends.

Copy this file as a starting point.  Run it with
``python examples/full_stack_fastapi.py`` (or
``uvicorn full_stack_fastapi:app --app-dir examples --no-proxy-headers --no-access-log``)
and try::

    curl -s --compressed -i http://127.0.0.1:8000/items/7
    curl -s -c /tmp/jar -b /tmp/jar http://127.0.0.1:8000/counter
    for i in 1 2 3 4 5 6; do curl -si http://127.0.0.1:8000/limited | head -1; done
    curl -s http://127.0.0.1:8000/metrics | grep route=

Needs ``pip install ".[demo]"`` (FastAPI, Uvicorn, redis).  Rate limits and
sessions live in memory unless ``REDIS_URL`` is set.  Spans are exported over
OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the SDK is installed
(``pip install ".[tracing]"``); otherwise tracing costs next to nothing.
Set ``SESSION_SECRET_KEY`` in production.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from asgi_kit import (
    AccessLogMiddleware,
    CompressionMiddleware,
    CORSMiddleware,
    MemoryStore,
    MetricsMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RedisStore,
    RequestIDMiddleware,
    Rule,
    SessionMiddleware,
    TracingMiddleware,
)
from asgi_kit.ratelimit import MemoryBackend, RedisBackend

REDIS_URL = os.environ.get("REDIS_URL")
SESSION_SECRET_KEY = os.environ.get("SESSION_SECRET_KEY", "example-only-change-me")
FRONTEND = "http://localhost:5173"
QUIET = ["/health", "/metrics"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    provider = None
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)  # TracingMiddleware follows the global provider
    yield
    if provider is not None:
        provider.shutdown()


# FastAPI's own SERVER span (FastAPI releases with native telemetry) would
# double TracingMiddleware's: keep one.
app = FastAPI(lifespan=lifespan, telemetry={"tracing": False})


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, object]:
    return {"id": item_id, "tags": ["asgi_kit"] * 100}


@app.get("/counter")
async def counter(request: Request) -> dict[str, int]:
    request.session["count"] = request.session.get("count", 0) + 1
    return {"count": request.session["count"]}


@app.get("/limited")
async def limited() -> dict[str, bool]:
    return {"ok": True}


@app.get("/events")
async def events() -> StreamingResponse:
    async def ticks() -> AsyncIterator[bytes]:
        for i in range(5):
            yield b"data: tick %d\n\n" % i
            await asyncio.sleep(0.2)

    return StreamingResponse(ticks(), media_type="text/event-stream")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


# add_middleware puts the last one added outermost: innermost first.
app.add_middleware(CompressionMiddleware, minimum_size=500)
app.add_middleware(
    SessionMiddleware,
    secret_key=SESSION_SECRET_KEY,
    store=RedisStore(REDIS_URL) if REDIS_URL else MemoryStore(),
)
app.add_middleware(
    RateLimitMiddleware,
    rules=[Rule("5/minute", path="/limited", algorithm="fixed_window"), Rule("600/minute")],
    backend=RedisBackend(REDIS_URL) if REDIS_URL else MemoryBackend(),
    exempt_paths=QUIET,
)
app.add_middleware(
    CORSMiddleware,
    allow_origins=[FRONTEND],
    allow_methods=["GET", "POST"],
    allow_headers=["Authorization", "X-Request-ID"],
    allow_credentials=True,
    expose_headers=["X-Request-ID", "Retry-After"],
)
app.add_middleware(MetricsMiddleware, metrics_path="/metrics")
app.add_middleware(AccessLogMiddleware, exclude_paths=QUIET)
app.add_middleware(TracingMiddleware, excluded_paths=QUIET)
app.add_middleware(RequestIDMiddleware)
app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=["127.0.0.1"])


if __name__ == "__main__":
    import uvicorn

    # This stack reads proxy headers and logs every request itself.
    uvicorn.run(app, host="127.0.0.1", port=8000, proxy_headers=False, access_log=False)
