"""Settings of the Django rate-limit routing app (the adapter in MIDDLEWARE)."""

from __future__ import annotations

from .ratelimit_routing import rules

SECRET_KEY = "ratelimit-routing-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.apps.ratelimit_routing_django"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
MIDDLEWARE = ["asgi_kit.contrib.django.RateLimitMiddleware"]
ASGI_KIT = {"RateLimitMiddleware": {"rules": rules("/items/<int:pk>")}}
