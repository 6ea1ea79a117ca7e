"""Django settings of the matrix: the example project's views, the eleven adapters in MIDDLEWARE."""

from __future__ import annotations

from .matrix_common import OPTIONS, ORDER

SECRET_KEY = "matrix-django-secret-key-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "tests.apps.matrix_django_urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True

# Top of the list = outermost, in the order of docs/stack.md.
MIDDLEWARE = [f"asgi_kit.contrib.django.{name}" for name in ORDER] + [
    "django.middleware.common.CommonMiddleware",
]
ASGI_KIT = {name: OPTIONS[name] for name in ORDER if OPTIONS[name]}
