"""asgi_kit: independent, composable, pure-ASGI middleware.

Every class wraps any ASGI 3 application (raw callables, FastAPI/Starlette,
Django, Litestar, Quart ...) with no framework dependency.
"""

from ._version import __version__
from .logging import AccessLogMiddleware, RequestIDMiddleware, get_request_id
from .proxy import ProxyHeadersMiddleware

__all__ = [
    "AccessLogMiddleware",
    "ProxyHeadersMiddleware",
    "RequestIDMiddleware",
    "__version__",
    "get_request_id",
]
