"""Rate limiting: ``RateLimitMiddleware``, ``Rule`` and the storage backends.

::

    from asgi_kit.ratelimit import RateLimitMiddleware, RedisBackend, Rule, header

    app = RateLimitMiddleware(
        app,
        rules=[Rule("100/minute"), Rule("10/minute", path="/login", methods={"POST"})],
        backend=RedisBackend("redis://localhost:6379/0"),
    )
"""

from .backends import Backend, BackendError, MemoryBackend, Outcome, RedisBackend
from .keys import KeyFunc, client_ip, header
from .middleware import RateLimitMiddleware
from .rule import Rule, parse_limit
from .websocket import WebSocketRateLimitMiddleware

__all__ = [
    "Backend",
    "BackendError",
    "KeyFunc",
    "MemoryBackend",
    "Outcome",
    "RateLimitMiddleware",
    "RedisBackend",
    "Rule",
    "WebSocketRateLimitMiddleware",
    "client_ip",
    "header",
    "parse_limit",
]
