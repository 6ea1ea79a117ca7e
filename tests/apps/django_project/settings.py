"""Settings of the test project: no database, only URL routing and middleware."""

from __future__ import annotations

SECRET_KEY = "django-adapter-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.apps.django_project.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
LOGGING_CONFIG = None

MIDDLEWARE = [
    "tests.apps.django_project.adapters.ContextBinder",
    "tests.apps.django_project.adapters.AddHeader",
    "tests.apps.django_project.adapters.ShortCircuit",
    "tests.apps.django_project.adapters.RouteHeader",
    "tests.apps.django_project.adapters.CookieSetter",
    "tests.apps.django_project.adapters.UpperCaseBody",
    "tests.apps.django_project.adapters.GunzipLazy",
]

ASGI_KIT = {
    "AddHeaderMiddleware": {"name": "X-Added", "value": "by-asgi"},
    "ShortCircuitMiddleware": {"path": "/limited", "status": 429},
}
