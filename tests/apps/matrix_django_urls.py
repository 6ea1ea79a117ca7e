"""URLs of the matrix's Django app: the example project's views, plus ``/`` and ``/inspect``."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django_project import views

from .matrix_common import big_payload, inspect_data, install_sdk

install_sdk()


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse(big_payload())


def boom(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("boom")


def form(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"method": request.method})


def inspect(request: HttpRequest) -> JsonResponse:
    return JsonResponse(inspect_data())


urlpatterns = [
    path("", index),
    path("items/<int:pk>", views.item),
    path("counter", views.counter),
    path("limited", views.limited),
    path("boom", boom),
    path("form", form),
    path("inspect", inspect),
]
