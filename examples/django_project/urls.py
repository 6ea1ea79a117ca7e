"""URLs of the example project."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("items/<int:pk>", views.item),
    path("counter", views.counter),
    path("limited", views.limited),
    path("events", views.events),
]
