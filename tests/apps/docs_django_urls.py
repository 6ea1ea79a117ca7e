"""URLs the Django snippets of the docs run against: Django-style paths ending in ``/``."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "docs"})


def login(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"login": True})


def item(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse({"id": pk})


urlpatterns = [
    path("", index),
    path("login/", login),
    path("accounts/login/", login),
    path("items/<int:pk>/", item),
]
