"""asgi_kit: independent, composable, pure-ASGI middleware.

Every class wraps any ASGI 3 application (raw callables, FastAPI/Starlette,
Django, Litestar, Quart ...) with no framework dependency.
"""

from ._version import __version__
from .compression import CompressionMiddleware
from .conditional import ConditionalGetMiddleware
from .cors import CORSMiddleware
from .limits import RequestLimitsMiddleware
from .logging import AccessLogMiddleware, RequestIDMiddleware, get_request_id
from .metrics import MetricsMiddleware, metrics_app
from .proxy import ProxyHeadersMiddleware
from .ratelimit import MemoryBackend, RateLimitMiddleware, RedisBackend, Rule
from .security import CSRFMiddleware, SecurityHeadersMiddleware, TrustedHostMiddleware
from .sessions import CookieStore, MemoryStore, RedisStore, SessionMiddleware
from .tracing import TracingMiddleware

__all__ = [
    "AccessLogMiddleware",
    "CORSMiddleware",
    "CSRFMiddleware",
    "CompressionMiddleware",
    "ConditionalGetMiddleware",
    "CookieStore",
    "MemoryBackend",
    "MemoryStore",
    "MetricsMiddleware",
    "ProxyHeadersMiddleware",
    "RateLimitMiddleware",
    "RedisBackend",
    "RedisStore",
    "RequestIDMiddleware",
    "RequestLimitsMiddleware",
    "Rule",
    "SecurityHeadersMiddleware",
    "SessionMiddleware",
    "TracingMiddleware",
    "TrustedHostMiddleware",
    "__version__",
    "get_request_id",
    "metrics_app",
]
