"""asgi_kit: independent, composable, pure-ASGI middleware.

Every class wraps any ASGI 3 application (raw callables, FastAPI/Starlette,
Django, Litestar, Quart ...) with no framework dependency.
"""

from ._version import __version__
from .ratelimit import MemoryBackend, RateLimitMiddleware, RedisBackend, Rule

__all__ = [
    "MemoryBackend",
    "RateLimitMiddleware",
    "RedisBackend",
    "Rule",
    "__version__",
]
