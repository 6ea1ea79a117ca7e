"""Django ``MIDDLEWARE`` adapters for asgi_kit and any other ASGI middleware.

List asgi_kit middleware in Django's settings by class name and configure it
with the ``ASGI_KIT`` setting::

    MIDDLEWARE = [
        "asgi_kit.contrib.django.ProxyHeadersMiddleware",
        "asgi_kit.contrib.django.CORSMiddleware",
        "django.middleware.common.CommonMiddleware",
        ...
    ]
    ASGI_KIT = {
        "CORSMiddleware": {"allow_origins": ["https://app.example.com"]},
    }

Each adapter builds its ASGI middleware once, when Django loads its
middleware, and runs it for every request around an inner ASGI app that calls
the rest of Django's chain (``get_response``) and sends the ``HttpResponse``
as ASGI messages; what the middleware sends back becomes the response Django
returns.  Adapters are both sync- and async-capable: under Django's ASGI
handler they run natively on the server's event loop, under its WSGI handler
they run the middleware on a background event loop while the view, streaming
iterators and body reads stay on the request's own thread.

:func:`asgi_middleware` builds an adapter for any ASGI middleware, including
third-party ones.  See ``docs/django.md``.
"""

from __future__ import annotations

import difflib
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from asgi_kit._http import asgi3
from asgi_kit._routes import ROUTE_KEY, django_route
from asgi_kit.types import ASGIApp

from ._async import AsyncExchange
from ._exchange import view_app
from ._scope import build_scope
from ._sync import SyncExchange

__all__ = [
    "AccessLogMiddleware",
    "CORSMiddleware",
    "CSRFMiddleware",
    "CompressionMiddleware",
    "ConditionalGetMiddleware",
    "DjangoASGIMiddleware",
    "MetricsMiddleware",
    "ProxyHeadersMiddleware",
    "RateLimitMiddleware",
    "RequestIDMiddleware",
    "RequestLimitsMiddleware",
    "RouteMiddleware",
    "SecurityHeadersMiddleware",
    "SessionMiddleware",
    "TracingMiddleware",
    "TrustedHostMiddleware",
    "asgi_middleware",
]

#: Name of the Django setting holding per-adapter options.
SETTING = "ASGI_KIT"


class DjangoASGIMiddleware:
    """Base class of the Django adapters; make one with :func:`asgi_middleware`.

    Class attributes:

    * ``asgi_middleware``: the ASGI middleware class (or factory taking the app
      first), or its dotted import path, imported when Django loads the
      middleware.
    * ``default_options``: keyword arguments passed to it.
    * ``settings_key``: the key of ``settings.ASGI_KIT`` whose options are
      merged over ``default_options`` (None reads no setting).

    Instance attributes: ``asgi_app`` is the ASGI middleware instance, built
    once; ``get_response`` is the rest of Django's chain.
    """

    sync_capable: ClassVar[bool] = True
    async_capable: ClassVar[bool] = True
    asgi_middleware: ClassVar[str | Callable[..., Any]]
    default_options: ClassVar[Mapping[str, Any]] = {}
    settings_key: ClassVar[str | None] = None

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self.asgi_app: ASGIApp = self._build()

    @classmethod
    def _label(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def _factory(cls) -> Callable[..., Any]:
        target: str | Callable[..., Any] | None = getattr(cls, "asgi_middleware", None)
        if target is None:
            raise ImproperlyConfigured(
                f"{cls._label()}: no ASGI middleware to run; build the class with "
                "asgi_middleware() or set its asgi_middleware attribute"
            )
        if not isinstance(target, str):
            return target
        try:
            factory = import_string(target)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{cls._label()}: cannot import the ASGI middleware {target!r} ({exc})"
            ) from exc
        if not callable(factory):
            raise ImproperlyConfigured(f"{cls._label()}: {target!r} is not callable")
        return factory  # type: ignore[no-any-return]

    @classmethod
    def options(cls) -> dict[str, Any]:
        """``default_options`` merged with this adapter's ``settings.ASGI_KIT`` entry."""
        options = dict(cls.default_options)
        key = cls.settings_key
        if key is None:
            return options
        configured = getattr(settings, SETTING, None)
        if configured is None:
            return options
        if not isinstance(configured, Mapping):
            raise ImproperlyConfigured(
                f"settings.{SETTING} must be a dict of middleware name to options, "
                f"not {type(configured).__name__}"
            )
        _check_setting_keys(configured)
        entry = configured.get(key)
        if entry is None:
            return options
        if not isinstance(entry, Mapping):
            raise ImproperlyConfigured(
                f"settings.{SETTING}[{key!r}] must be a dict of options for "
                f"{cls._label()}, not {type(entry).__name__}"
            )
        for name in entry:
            if not isinstance(name, str):
                raise ImproperlyConfigured(
                    f"settings.{SETTING}[{key!r}]: option names must be strings, got {name!r}"
                )
        options.update(entry)
        return options

    def _build(self) -> ASGIApp:
        cls = type(self)
        factory = cls._factory()
        options = cls.options()
        _check_options(cls, factory, options)
        try:
            app = factory(view_app, **options)
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"{cls._where()}: {exc}") from exc
        if not callable(app):
            raise ImproperlyConfigured(f"{cls._label()}: the ASGI middleware is not callable")
        return asgi3(app)

    @classmethod
    def _where(cls) -> str:
        if cls.settings_key is None:
            return cls._label()
        return f"{cls._label()} (settings.{SETTING}[{cls.settings_key!r}])"

    def __call__(self, request: Any) -> Any:
        scope = build_scope(request)
        request.asgi_scope = scope
        if self.is_async:
            return AsyncExchange(request, scope, self.get_response).run(self.asgi_app)
        return SyncExchange(request, scope, self.get_response).run(self.asgi_app)

    def __repr__(self) -> str:
        return f"<{self._label()} wrapping {self.asgi_app!r}>"


class RouteMiddleware:
    """Publish Django's route template in the ASGI server's scope.

    For the *wrapping* way (ASGI middleware around ``get_asgi_application()``):
    list it first in ``MIDDLEWARE`` and, after the view ran, it stores
    ``request.resolver_match.route`` (as ``"/items/<int:pk>"``) under
    ``scope["asgi_kit.route"]`` of the scope Django's ASGI handler received,
    where asgi_kit's tracing and metrics middleware read it.  It also sets
    ``request.asgi_scope`` to that scope (unless an adapter already did), so a
    view reaches ``request.asgi_scope["session"]`` the same way as with the
    adapters.  Under the WSGI handler there is no ASGI scope and it does
    nothing.  The adapters in this module set the route for the middleware
    they run themselves.
    """

    sync_capable: ClassVar[bool] = True
    async_capable: ClassVar[bool] = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        scope = _server_scope(request)
        response = self.get_response(request)
        _publish_route(request, scope)
        return response

    async def _acall(self, request: Any) -> Any:
        scope = _server_scope(request)
        response = await self.get_response(request)
        _publish_route(request, scope)
        return response


def _server_scope(request: Any) -> Any:
    """The scope Django's ASGI handler received (None under WSGI), as ``request.asgi_scope``."""
    scope = request.__dict__.get("scope")
    if isinstance(scope, dict) and "asgi_scope" not in request.__dict__:
        # Views written for the adapters read request.asgi_scope: keep that
        # working when the middleware wraps Django instead.
        request.asgi_scope = scope
    return scope


def _publish_route(request: Any, scope: Any) -> None:
    if isinstance(scope, dict):
        route = django_route(request, scope)
        if route is not None:
            scope[ROUTE_KEY] = route


def _known_settings_keys() -> set[str]:
    """Every ``settings_key`` an adapter reads: each adapter class defined so far.

    The classes listed in ``MIDDLEWARE`` are imported first, so that an adapter
    defined in the project's own module counts even when Django has not loaded
    it yet (Django builds the innermost middleware first).
    """
    for path in getattr(settings, "MIDDLEWARE", None) or ():
        if isinstance(path, str):
            try:
                import_string(path)
            except Exception:  # Django reports a bad entry itself, in its own words
                continue
    keys: set[str] = set()
    pending: list[type[DjangoASGIMiddleware]] = [DjangoASGIMiddleware]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if isinstance(cls.settings_key, str):
            keys.add(cls.settings_key)
    return keys


def _check_setting_keys(configured: Mapping[Any, Any]) -> None:
    """Refuse an ``ASGI_KIT`` key no adapter reads: a misspelt name would be ignored."""
    known: set[str] | None = None
    for key in configured:
        if known is None:
            known = _known_settings_keys()
        if key in known:
            continue
        if not isinstance(key, str):
            raise ImproperlyConfigured(
                f"settings.{SETTING}: keys must be middleware names (str), got {key!r}"
            )
        by_lower = {name.lower(): name for name in known}
        close = difflib.get_close_matches(key.lower(), list(by_lower), n=1)
        hint = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
        raise ImproperlyConfigured(
            f"settings.{SETTING}: unknown middleware name {key!r}{hint}; "
            f"known names: {', '.join(sorted(known))}"
        )


def _check_options(
    cls: type[DjangoASGIMiddleware], factory: Callable[..., Any], options: Mapping[str, Any]
) -> None:
    """Name unknown and missing options before the middleware sees them."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        return
    app_name = params[0].name
    named = {
        p.name: p
        for p in params[1:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    where = cls._where()
    for name in options:
        if name == app_name:
            raise ImproperlyConfigured(
                f"{where}: {name!r} is the wrapped application, not an option"
            )
        if name not in named and not open_ended:
            close = difflib.get_close_matches(name, list(named), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            valid = ", ".join(sorted(named)) or "none"
            raise ImproperlyConfigured(
                f"{where}: unknown option {name!r}{hint}; valid options: {valid}"
            )
    for name, param in named.items():
        if param.default is inspect.Parameter.empty and name not in options:
            raise ImproperlyConfigured(f"{where}: the option {name!r} is required")


def asgi_middleware(
    middleware: str | Callable[..., Any], /, **options: Any
) -> type[DjangoASGIMiddleware]:
    """Build a Django middleware class that runs an ASGI middleware.

    ``middleware`` is the ASGI middleware class (or any factory called as
    ``middleware(app, **options)``), or its dotted import path; a path is
    imported only when Django loads the middleware.  ``options`` are the
    defaults, overridden by ``settings.ASGI_KIT["<Name>"]`` where ``<Name>``
    is the class name (change it with a subclass's ``settings_key``).

    Put the returned class in one of your modules and list that path in
    ``MIDDLEWARE``::

        # myproject/middleware.py
        from asgi_kit.contrib.django import asgi_middleware

        GZipMiddleware = asgi_middleware(
            "starlette.middleware.gzip.GZipMiddleware", minimum_size=1000
        )

    Options are checked against the middleware's signature when Django
    starts: an unknown option, a missing required one, or one the middleware
    rejects with ``ValueError``/``TypeError`` raises
    :class:`~django.core.exceptions.ImproperlyConfigured` naming it.
    """
    if isinstance(middleware, str):
        if "." not in middleware:
            raise ValueError(f"middleware: {middleware!r} is not a dotted import path")
        name = middleware.rpartition(".")[2]
    elif callable(middleware):
        name = getattr(middleware, "__name__", type(middleware).__name__)
    else:
        raise TypeError(f"middleware must be a dotted path or a callable, not {middleware!r}")
    namespace: dict[str, Any] = {
        "asgi_middleware": middleware,
        "default_options": dict(options),
        "settings_key": name,
        "__doc__": f"Django middleware running the ASGI middleware {middleware!r}.",
        # Error messages name the module that built the adapter.
        "__module__": sys._getframe(1).f_globals.get("__name__", __name__),
        "__qualname__": name,
    }
    return type(name, (DjangoASGIMiddleware,), namespace)


def _builtin(module: str, name: str) -> type[DjangoASGIMiddleware]:
    cls = asgi_middleware(f"asgi_kit.{module}.{name}")
    cls.__doc__ = (
        f"Django adapter for :class:`asgi_kit.{module}.{name}`, configured by "
        f"``ASGI_KIT = {{{name!r}: {{...}}}}``."
    )
    return cls


CompressionMiddleware = _builtin("compression", "CompressionMiddleware")
CORSMiddleware = _builtin("cors", "CORSMiddleware")
TracingMiddleware = _builtin("tracing", "TracingMiddleware")
MetricsMiddleware = _builtin("metrics", "MetricsMiddleware")
RateLimitMiddleware = _builtin("ratelimit", "RateLimitMiddleware")
SessionMiddleware = _builtin("sessions", "SessionMiddleware")
RequestIDMiddleware = _builtin("logging", "RequestIDMiddleware")
AccessLogMiddleware = _builtin("logging", "AccessLogMiddleware")
ProxyHeadersMiddleware = _builtin("proxy", "ProxyHeadersMiddleware")
SecurityHeadersMiddleware = _builtin("security", "SecurityHeadersMiddleware")
CSRFMiddleware = _builtin("security", "CSRFMiddleware")
TrustedHostMiddleware = _builtin("security", "TrustedHostMiddleware")
RequestLimitsMiddleware = _builtin("limits", "RequestLimitsMiddleware")
ConditionalGetMiddleware = _builtin("conditional", "ConditionalGetMiddleware")
