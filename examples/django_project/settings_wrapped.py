"""Settings for ``asgi_wrapped.py``: the asgi_kit middleware wrap Django instead.

Only ``RouteMiddleware`` stays in MIDDLEWARE: it hands Django's route
templates (``/items/<int:pk>``) to the ASGI middleware wrapped around Django.
"""

from __future__ import annotations

from .settings import *  # noqa: F403

MIDDLEWARE = [
    "asgi_kit.contrib.django.RouteMiddleware",
    "django.middleware.common.CommonMiddleware",
]
