"""The other way: asgi_kit middleware wrapped around Django's ASGI application.

Serve it with ``uvicorn django_project.asgi_wrapped:application`` (from
examples/).  It builds the same nine middleware as ``settings.MIDDLEWARE``, in
the same order and with the same ``ASGI_KIT`` options, around Django instead
of inside it.  Its settings keep only ``RouteMiddleware`` in MIDDLEWARE, so
nothing runs twice, metrics and traces still get route templates, and views
still find the ASGI scope (and the session) on ``request.asgi_scope``.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from asgi_kit import (
    AccessLogMiddleware,
    CompressionMiddleware,
    CORSMiddleware,
    MetricsMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RequestIDMiddleware,
    SessionMiddleware,
    TracingMiddleware,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings_wrapped")

django_app = get_asgi_application()  # first: it loads the settings
options = settings.ASGI_KIT

# Wrapping happens inside out: the last wrapper is the outermost, as the
# first entry of MIDDLEWARE is.
app = CompressionMiddleware(django_app, **options["CompressionMiddleware"])
app = SessionMiddleware(app, **options["SessionMiddleware"])
app = RateLimitMiddleware(app, **options["RateLimitMiddleware"])
app = CORSMiddleware(app, **options["CORSMiddleware"])
app = MetricsMiddleware(app, **options["MetricsMiddleware"])
app = AccessLogMiddleware(app)
app = TracingMiddleware(app)
app = RequestIDMiddleware(app)
application = ProxyHeadersMiddleware(app, **options["ProxyHeadersMiddleware"])
