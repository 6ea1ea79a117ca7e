"""Django's version of the rate-limit routing apps: views and URLconf.

Django URLs end in ``/`` (``/login/``), as in a standard project, while the
rules name ``/login``: a rule's path covers both spellings.  The settings are
``ratelimit_routing_django_settings.py``; ``application`` in
``ratelimit_routing_django_asgi.py``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST, require_safe

from .ratelimit_routing import HANDLER_HEADER, ran, runs_of

ITEM_ROUTE = "/items/<int:pk>/"


def _answer(request: HttpRequest, name: str) -> HttpResponse:
    ran(request.headers.get("x-client", ""), name)
    return JsonResponse({"handler": name}, headers={HANDLER_HEADER: name})


@require_POST
def login(request: HttpRequest) -> HttpResponse:
    return _answer(request, "login")


@require_safe  # GET and HEAD, as Django's generic views
def page(request: HttpRequest) -> HttpResponse:
    return _answer(request, "page")


def limited(request: HttpRequest) -> HttpResponse:
    return _answer(request, "limited")


def item(request: HttpRequest, pk: int) -> HttpResponse:
    return _answer(request, "item")


def runs(request: HttpRequest) -> HttpResponse:
    return JsonResponse(runs_of(request.headers.get("x-client", "")))


urlpatterns: list[Any] = [
    path("login/", login),
    path("page/", page),
    path("limited/", limited),
    path("items/<int:pk>/", item),
    path("runs/", runs),
]
