"""Django adapters for the test middleware, built with asgi_kit's generic factory."""

from __future__ import annotations

from asgi_kit.contrib.django import asgi_middleware

from . import mw

_P = "tests.apps.django_project.mw."

# By dotted path (imported lazily when Django loads the middleware) ...
AddHeader = asgi_middleware(_P + "AddHeaderMiddleware")
ShortCircuit = asgi_middleware(_P + "ShortCircuitMiddleware")
UpperCaseBody = asgi_middleware(_P + "UpperCaseBodyMiddleware")
RouteHeader = asgi_middleware(_P + "RouteHeaderMiddleware")
# ... or by class, with defaults in code that ASGI_KIT can override.
CookieSetter = asgi_middleware(mw.CookieSetterMiddleware, name="mw")
ContextBinder = asgi_middleware(mw.ContextBinderMiddleware)
GunzipLazy = asgi_middleware(mw.GunzipRequestMiddleware)
GunzipEager = asgi_middleware(mw.GunzipRequestMiddleware, eager=True)
BodyPeek = asgi_middleware(mw.BodyPeekMiddleware)
Failing = asgi_middleware(mw.FailingMiddleware)
RaiseAfter = asgi_middleware(mw.RaiseAfterResponseMiddleware)
Legacy = asgi_middleware(mw.LegacyASGI2Middleware)
Missing = asgi_middleware("tests.apps.django_project.no_such_module.Middleware")


class Required(asgi_middleware(_P + "RequiredOptionMiddleware")):  # type: ignore[misc]
    """A subclass reads its own ``ASGI_KIT`` key."""

    settings_key = "Required"
