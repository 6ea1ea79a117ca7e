"""URLs of the test project."""

from __future__ import annotations

from django.urls import include, path, re_path

from . import views

api = [
    path("items/<int:pk>", views.item_view),
    re_path(r"^legacy/(?P<year>[0-9]{4})/$", views.legacy_view),
]

urlpatterns = [
    path("json", views.json_view),
    path("async-json", views.async_json_view),
    path("info", views.info_view),
    path("echo", views.echo_view),
    path("form", views.form_view),
    path("limited", views.limited_view),
    path("boom", views.boom_view),
    path("stream", views.stream_view),
    path("async-stream", views.async_stream_view),
    path("items/<int:pk>", views.item_view),
    path("api/", include(api)),
]
