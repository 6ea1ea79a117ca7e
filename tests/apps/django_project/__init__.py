"""A minimal Django project for the asgi_kit Django adapter tests.

In-process tests call :func:`configure`; the live-server app
(``tests/apps/django_asgi.py``) uses ``DJANGO_SETTINGS_MODULE`` pointing at
``tests.apps.django_project.settings``.
"""

from __future__ import annotations


def configure() -> None:
    """Configure Django from :mod:`.settings` once per process."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    from . import settings as project

    settings.configure(**{name: getattr(project, name) for name in dir(project) if name.isupper()})
    django.setup()
