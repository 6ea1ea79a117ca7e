"""The Django rate-limit routing app under ASGI (for the live servers)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.apps.ratelimit_routing_django_settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
