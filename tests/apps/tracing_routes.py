"""Routes shared by the tracing tests: a FastAPI app with templated HTTP and WebSocket routes.

Importing this module has no side effects (no tracer provider is installed).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, WebSocket
from opentelemetry import trace


def build_api() -> FastAPI:
    """``GET /items/{item_id}`` (echoes the current trace id) and ``WS /ws/{room}``."""
    # FastAPI releases with built-in telemetry would add a second SERVER span of
    # their own once a global SDK is installed: leave request spans to the middleware.
    try:
        api = FastAPI(telemetry={"tracing": False})
    except TypeError:  # a FastAPI without built-in telemetry
        api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        ctx = trace.get_current_span().get_span_context()
        return {"item_id": item_id, "trace_id": f"{ctx.trace_id:032x}"}

    @api.websocket("/ws/{room}")
    async def ws(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"{room}:{text}")
        await websocket.close()

    return api
