"""A WebSocket echo whose inbound messages are limited (3 per minute).

``/ws``: per connection; ``/ws-shared``: per client key across connections.
"""

from __future__ import annotations

from typing import Any

from asgi_kit.ratelimit import MemoryBackend, Rule, WebSocketRateLimitMiddleware


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


backend = MemoryBackend()
per_connection = WebSocketRateLimitMiddleware(
    echo, rules=[Rule("3/minute", path="/ws")], backend=backend
)
app = WebSocketRateLimitMiddleware(
    per_connection, rules=[Rule("3/minute", path="/ws-shared")], backend=backend, per="key"
)
