"""CORSMiddleware in a FastAPI app: the Starlette import swapped for asgi_kit's.

Run: ``uvicorn examples.cors_fastapi:app``.  Preview deployments on
``https://<branch>.preview.example.com`` are allowed by a regex, tenants'
custom domains by an async look-up, and WebSocket handshakes from other sites
are refused.
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket

from asgi_kit import CORSMiddleware

TENANT_DOMAINS = {"https://shop.customer-one.com", "https://store.customer-two.net"}


async def is_tenant(origin: str) -> bool:
    """Stand-in for a database or cache look-up (async: never blocks the loop)."""
    return origin in TENANT_DOMAINS


api = FastAPI()


@api.get("/items")
async def items() -> list[dict[str, int]]:
    return [{"id": 1}, {"id": 2}]


@api.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


api.add_middleware(
    CORSMiddleware,
    allow_origins=["https://app.example.com"],
    allow_origin_regex=r"https://[a-z0-9-]+\.preview\.example\.com",
    allow_origin_func=is_tenant,
    allow_methods=["*"],
    allow_headers=["*"],
    allow_credentials=True,
)

# Alternatively wrap the finished app, ``app = CORSMiddleware(api, ...)``: then
# the 500 pages and custom exception-handler responses that Starlette's
# outermost ServerErrorMiddleware sends carry CORS headers too.
app = api
