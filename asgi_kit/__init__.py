"""asgi_kit: independent, composable, pure-ASGI middleware.

Every class wraps any ASGI 3 application (raw callables, FastAPI/Starlette,
Django, Litestar, Quart ...) with no framework dependency.
"""

from ._version import __version__
from .cors import CORSMiddleware
from .metrics import MetricsMiddleware, metrics_app
from .ratelimit import MemoryBackend, RateLimitMiddleware, RedisBackend, Rule
from .sessions import CookieStore, MemoryStore, RedisStore, SessionMiddleware
from .tracing import TracingMiddleware

__all__ = [
    "CORSMiddleware",
    "CookieStore",
    "MemoryBackend",
    "MemoryStore",
    "MetricsMiddleware",
    "RateLimitMiddleware",
    "RedisBackend",
    "RedisStore",
    "Rule",
    "SessionMiddleware",
    "TracingMiddleware",
    "__version__",
    "metrics_app",
]
