"""The other way: asgi_kit middleware wrapped around Django's ASGI application.

Serve it with ``uvicorn django_project.asgi_wrapped:application`` (from
examples/).  Its settings keep only ``RouteMiddleware`` in MIDDLEWARE, so
nothing runs twice and metrics and traces still get route templates.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from asgi_kit.compression import CompressionMiddleware
from asgi_kit.cors import CORSMiddleware
from asgi_kit.metrics import MetricsMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings_wrapped")

application = MetricsMiddleware(
    CompressionMiddleware(
        CORSMiddleware(get_asgi_application(), allow_origins=["http://localhost:3000"]),
        minimum_size=500,
    ),
    metrics_path="/metrics",
)
