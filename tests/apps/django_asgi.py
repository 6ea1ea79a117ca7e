"""Django's ASGI application for the live-server tests.

``application`` runs the test project's MIDDLEWARE adapters; ``wrapped`` is
the same application wrapped directly with an ASGI middleware.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.apps.django_project.settings")

from django.core.asgi import get_asgi_application

from tests.apps.django_project.mw import AddHeaderMiddleware, UpperCaseBodyMiddleware

application = get_asgi_application()
wrapped = AddHeaderMiddleware(
    UpperCaseBodyMiddleware(application, enabled_header="x-upper-outside"),
    name="x-wrapped",
    value="outside",
)
