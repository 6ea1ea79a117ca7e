"""Helpers shared by the metrics tests: scrape, read samples, a routed FastAPI app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.routing import Mount, Route

from asgi_kit import MetricsMiddleware, metrics_app
from asgi_kit.types import Receive, Scope, Send

from .asgi import call_http

DURATION = "http_server_request_duration_seconds"
ACTIVE = "http_server_active_requests"
REQ_SIZE = "http_server_request_body_size_bytes"
RESP_SIZE = "http_server_response_body_size_bytes"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


# --------------------------------------------------------------------------- helpers


async def scrape(
    registry: CollectorRegistry, accept: str | None = None, query: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    headers = {"accept": accept} if accept else {}
    response = await call_http(metrics_app(registry), headers=headers, query_string=query)
    return (
        response.status,
        {k.decode(): v.decode() for k, v in response.headers},
        response.body,
    )


async def samples(registry: CollectorRegistry) -> list[Sample]:
    """Every sample of what metrics_app serves, parsed by prometheus-client's parser."""
    status, _, body = await scrape(registry)
    assert status == 200
    return [s for fam in text_string_to_metric_families(body.decode()) for s in fam.samples]


def value(found: list[Sample], name: str, **labels: str) -> float | None:
    for s in found:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def series(found: list[Sample], name: str) -> set[tuple[tuple[str, str], ...]]:
    return {tuple(sorted(s.labels.items())) for s in found if s.name == name}


def make_fastapi() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.post("/upload")
    async def upload(payload: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(payload)}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> Any:
            for _ in range(3):
                yield b"x" * 1000

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418)

    @app.websocket("/ws/{room}")
    async def ws(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text)
        await websocket.close()

    async def sub_page(request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("sub")

    app.router.routes.append(Mount("/sub", routes=[Route("/pages/{page}", sub_page)]))
    return app


def instrumented(**options: Any) -> tuple[FastAPI, CollectorRegistry]:
    registry = CollectorRegistry()
    app = make_fastapi()
    app.add_middleware(MetricsMiddleware, registry=registry, **options)
    return app, registry


async def plain_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
