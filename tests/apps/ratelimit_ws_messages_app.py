"""A WebSocket echo whose inbound messages are limited (3 per minute).

``/ws``: per connection; ``/ws-shared``: per client key across connections.
"""

from __future__ import annotations

from asgi_kit.ratelimit import MemoryBackend, Rule, WebSocketRateLimitMiddleware

from .ratelimit_ws_app import echo

backend = MemoryBackend()
per_connection = WebSocketRateLimitMiddleware(
    echo, rules=[Rule("3/minute", path="/ws")], backend=backend
)
app = WebSocketRateLimitMiddleware(
    per_connection, rules=[Rule("3/minute", path="/ws-shared")], backend=backend, per="key"
)
