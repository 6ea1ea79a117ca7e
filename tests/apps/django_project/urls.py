"""URLs of the test project."""

from __future__ import annotations

from django.urls import include, path, re_path

from . import views

api = [
    path("items/<int:pk>", views.item_view),
    re_path(r"^legacy/(?P<year>[0-9]{4})/$", views.legacy_view),
]

ROUTES = {
    "json": views.json_view,
    "async-json": views.async_json_view,
    "info": views.info_view,
    "echo": views.echo_view,
    "form": views.form_view,
    "limited": views.limited_view,
    "boom": views.boom_view,
    "stream": views.stream_view,
    "async-stream": views.async_stream_view,
    "items/<int:pk>": views.item_view,
    "slow": views.slow_view,
}

urlpatterns = [*(path(route, view) for route, view in ROUTES.items()), path("api/", include(api))]
