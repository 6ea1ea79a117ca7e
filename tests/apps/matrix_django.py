"""The matrix's Django project under ASGI (the asgi_kit adapters run from MIDDLEWARE)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.apps.matrix_django_settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
