"""asgi_kit: independent, composable, pure-ASGI middleware.

Every class wraps any ASGI 3 application (raw callables, FastAPI/Starlette,
Django, Litestar, Quart ...) with no framework dependency.
"""

from ._version import __version__
from .compression import CompressionMiddleware

__all__ = ["CompressionMiddleware", "__version__"]
