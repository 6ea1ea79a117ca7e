"""A WebSocket echo limited to 1 handshake per minute per client (memory backend)."""

from __future__ import annotations

from typing import Any

from asgi_kit.ratelimit import RateLimitMiddleware, Rule


async def echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "text": message.get("text") or ""})


app = RateLimitMiddleware(echo, rules=[Rule("1/minute")])
