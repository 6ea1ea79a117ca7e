"""Route-level rate limits for Django views: ``@rate_limit(Rule(...))``.

::

    from asgi_kit.ratelimit import Rule
    from asgi_kit.ratelimit.decorators import rate_limit

    @rate_limit(Rule("5/minute", methods={"POST"}, name="login"))
    def login(request): ...

Works on sync and async views, under ASGI and WSGI, and answers a denied
request with the middleware's own 429.  Needs Django (this module imports
it; the rest of asgi_kit does not).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.http import HttpResponse  # type: ignore[import-untyped]

from asgi_kit._routes import ROUTE_KEY
from asgi_kit._routes import django_route as route_of
from asgi_kit.contrib.django._scope import build_scope
from asgi_kit.types import Scope

from .check import CheckResult, RateLimitCheck
from .rule import Rule

__all__ = ["rate_limit"]

View = TypeVar("View", bound=Callable[..., Any])


def _scope(request: Any) -> Scope:
    scope = build_scope(request)
    # The view is resolved by now: route= rules match its template.
    route = route_of(request, scope)
    if route is not None:
        scope[ROUTE_KEY] = route
    return scope


def _denied(result: CheckResult) -> Any:
    # The middleware's headers include its Content-Type and Content-Length.
    return _add_headers(HttpResponse(result.body, status=result.status), result)


def _add_headers(response: Any, result: CheckResult) -> Any:
    for name, value in result.headers:
        response[name.decode("latin-1")] = value.decode("latin-1")
    return response


def rate_limit(*rules: Rule | Iterable[Rule], **options: Any) -> Callable[[View], View]:
    """Limit a Django view with ``rules`` and the middleware's ``options``.

    ``options`` are those of :class:`~asgi_kit.ratelimit.RateLimitMiddleware`
    (``backend``, ``key``, ``headers``, ``on_backend_error``,
    ``partition_key``, ``problem_details`` ...); pass the backend your
    ``MIDDLEWARE`` adapter uses to share its storage.  An admitted request
    runs the view and its response gets the rate-limit headers; a denied one
    gets the middleware's 429 (``Retry-After``, headers, body) without
    running the view.  The key functions see the scope the asgi_kit Django
    adapters build (``scope["client"]``, ``scope["headers"]``, and the
    session or user other adapters put there).
    """
    check = RateLimitCheck(*rules, **options)
    check_sync = async_to_sync(check)

    def decorator(view: View) -> View:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(request: Any, *args: Any, **kwargs: Any) -> Any:
                result = await check(_scope(request))
                if not result.allowed:
                    return _denied(result)
                return _add_headers(await view(request, *args, **kwargs), result)

            markcoroutinefunction(async_view)
            return async_view  # type: ignore[return-value]

        @functools.wraps(view)
        def sync_view(request: Any, *args: Any, **kwargs: Any) -> Any:
            result = check_sync(_scope(request))
            if not result.allowed:
                return _denied(result)
            return _add_headers(view(request, *args, **kwargs), result)

        return sync_view  # type: ignore[return-value]

    return decorator
