"""Route-level rate limits for FastAPI: ``Depends(RateLimit(...))``.

::

    from fastapi import Depends, FastAPI
    from asgi_kit.ratelimit import RedisBackend, Rule
    from asgi_kit.ratelimit.dependency import RateLimit

    backend = RedisBackend("redis://localhost:6379/0")
    login_limit = RateLimit(Rule("5/minute", name="login"), backend=backend)

    @app.post("/login", dependencies=[Depends(login_limit)])
    async def login(): ...

Needs FastAPI (this module imports it; the rest of asgi_kit does not).
"""

# No `from __future__ import annotations`: FastAPI reads the annotations of
# RateLimit.__call__ at runtime to know what to inject.

from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .check import CheckResult, RateLimitCheck
from .rule import Rule

__all__ = ["RateLimit", "RateLimitExceeded", "rate_limit_exceeded_handler"]

# Where Starlette's ExceptionMiddleware publishes its handlers for the route
# to use (Starlette >= 0.28); the first request registers ours there.
_HANDLERS_KEY = "starlette.exception_handlers"


class RateLimitExceeded(HTTPException):
    """Raised by :class:`RateLimit` for a denied request.

    ``response`` is the middleware's answer (429 with ``Retry-After``, the
    rate-limit headers and its JSON or problem-details body, or the 503 of
    ``on_backend_error="deny"``); :func:`rate_limit_exceeded_handler` sends
    it.  Being an ``HTTPException``, it still becomes a 429 with the same
    headers under an app whose own handler takes precedence.
    """

    def __init__(self, result: CheckResult) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in result.headers}
        headers.pop("content-length", None)
        headers.pop("content-type", None)
        super().__init__(status_code=result.status, detail="Too Many Requests", headers=headers)
        self.result = result

    @property
    def response(self) -> Response:
        """The middleware's response, as a Starlette ``Response``."""
        response = Response(self.result.body, status_code=self.result.status)
        # Exactly the middleware's headers (content-length and -type included).
        response.raw_headers = list(self.result.headers)
        return response


async def rate_limit_exceeded_handler(request: Request, exc: Exception) -> Response:
    """Exception handler answering :class:`RateLimitExceeded` with the middleware's response.

    :class:`RateLimit` installs it by itself on the first request; register
    it explicitly (``app.add_exception_handler(RateLimitExceeded,
    rate_limit_exceeded_handler)``) to make that visible, or replace it.
    """
    if not isinstance(exc, RateLimitExceeded):  # pragma: no cover - registered for it only
        raise exc
    return exc.response


class RateLimit:
    """A FastAPI dependency that limits the route or router it is attached to.

    ``RateLimit(*rules, **options)`` takes :class:`Rule` objects and the
    options of :class:`~asgi_kit.ratelimit.RateLimitMiddleware` (``backend``,
    ``key``, ``headers``, ``on_backend_error``, ``exclude_paths``,
    ``partition_key``, ``problem_details``), and decides with the
    middleware's own code.  Pass your middleware's backend to share its
    storage (give route-level rules a ``name`` so they do not share a bucket
    with a middleware rule of the same limit).

    Attach it with ``Depends``: on a route (``dependencies=[Depends(limit)]``
    or a parameter ``info: CheckResult = Depends(limit)``), on a router
    (``APIRouter(dependencies=[Depends(limit)])``) or on the app.  Admitted
    requests get the rate-limit headers on the response FastAPI builds from
    the endpoint's return value (an endpoint returning its own ``Response``
    adds ``info.headers`` itself); denied ones raise
    :class:`RateLimitExceeded`, answered with the middleware's 429.  Rules
    scoped with ``route=`` match here for certain: the route is resolved.
    HTTP routes only (WebSocket messages: see ``WebSocketRateLimit``).
    """

    def __init__(self, *rules: Rule | Iterable[Rule], **options: Any) -> None:
        self.check = RateLimitCheck(*rules, **options)

    async def __call__(self, request: HTTPConnection, response: Response) -> CheckResult:
        scope = request.scope
        if scope["type"] != "http":
            raise TypeError("RateLimit limits HTTP routes; use it with Depends on HTTP routes")
        result = await self.check(scope)
        if not result.allowed:
            handlers = scope.get(_HANDLERS_KEY)
            if isinstance(handlers, tuple) and handlers and isinstance(handlers[0], dict):
                handlers[0].setdefault(RateLimitExceeded, rate_limit_exceeded_handler)
            raise RateLimitExceeded(result)
        if result.headers:
            raw = response.headers.raw
            names = {k for k, _ in result.headers}
            raw[:] = [(k, v) for k, v in raw if k.lower() not in names]
            raw.extend(result.headers)
        return result

    def __repr__(self) -> str:
        return f"RateLimit({self.check.middleware!r})"
