"""Settings of the example project.

The nine asgi_kit middleware are listed by name in ``MIDDLEWARE`` and
configured in ``ASGI_KIT``; every option is that middleware's own keyword
argument (see docs/).  Anything not configured keeps its default.
"""

from __future__ import annotations

import os

from asgi_kit.ratelimit import Rule

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "django_project.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
TIME_ZONE = "UTC"  # Django sets the process time zone: keep log times in UTC
WSGI_APPLICATION = "django_project.wsgi.application"

# Top of the list = outermost, in the order docs/stack.md recommends: proxy
# headers first, so every later middleware sees the real client; the request
# id and the trace span before the access log and metrics, which record both;
# CORS outside the rate limiter, so a 429 still carries CORS headers and
# preflights are never limited; compression innermost, next to the views.
MIDDLEWARE = [
    "asgi_kit.contrib.django.ProxyHeadersMiddleware",
    "asgi_kit.contrib.django.RequestIDMiddleware",
    "asgi_kit.contrib.django.TracingMiddleware",
    "asgi_kit.contrib.django.AccessLogMiddleware",
    "asgi_kit.contrib.django.MetricsMiddleware",
    "asgi_kit.contrib.django.CORSMiddleware",
    "asgi_kit.contrib.django.RateLimitMiddleware",
    "asgi_kit.contrib.django.SessionMiddleware",
    "asgi_kit.contrib.django.CompressionMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ASGI_KIT = {
    "ProxyHeadersMiddleware": {"trusted_hosts": ["127.0.0.1"]},
    "MetricsMiddleware": {"metrics_path": "/metrics"},
    "CompressionMiddleware": {"minimum_size": 500},
    "CORSMiddleware": {
        "allow_origins": ["http://localhost:3000"],
        "allow_methods": ["GET", "POST"],
        "allow_credentials": True,
    },
    "RateLimitMiddleware": {"rules": [Rule("5/minute", path="/limited")]},
    "SessionMiddleware": {
        "secret_key": os.environ.get("SESSION_SECRET_KEY", "example-session-key-change-me"),
        "https_only": False,
    },
}

# AccessLogMiddleware logs every request, 429s and refused preflights
# included: keep Django's own django.request lines for 5xx only.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.request": {"level": "ERROR"}},
}
