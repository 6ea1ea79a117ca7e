"""A raw-ASGI app behind CORSMiddleware, served by real servers in the e2e tests."""

from __future__ import annotations

from typing import Any

from asgi_kit import CORSMiddleware


async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or "?"})
    cookie = b""
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookie = value
    body = b"cookie=" + cookie
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
                (b"vary", b"Accept-Encoding"),
                (b"x-total", b"7"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = CORSMiddleware(
    inner,
    allow_origins=["https://app.example.com"],
    allow_methods=["GET", "POST", "PUT"],
    allow_headers=["X-Token"],
    allow_credentials=True,
    expose_headers=["X-Total"],
    max_age=120,
)
