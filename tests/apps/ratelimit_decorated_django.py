"""Django views limited with ``@rate_limit`` (tests/test_ratelimit_decorators.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from asgi_kit.ratelimit import MemoryBackend, Rule, header
from asgi_kit.ratelimit.decorators import rate_limit

BACKEND = MemoryBackend()
RUNS: dict[str, int] = {}


def _ran(name: str) -> None:
    RUNS[name] = RUNS.get(name, 0) + 1


@rate_limit(Rule("2/minute", name="sync", key=header("x-user")), backend=BACKEND)
def sync_view(request: HttpRequest) -> HttpResponse:
    _ran("sync")
    return JsonResponse({"view": "sync"})


@rate_limit(
    Rule("2/minute", name="async", key=header("x-user")),
    backend=BACKEND,
    headers="ietf",
    problem_details=True,
)
async def async_view(request: HttpRequest) -> HttpResponse:
    _ran("async")
    return JsonResponse({"view": "async"})


@rate_limit(Rule("1/minute", route="/items/<int:pk>/", name="items"), backend=BACKEND)
def item(request: HttpRequest, pk: int) -> HttpResponse:
    return JsonResponse({"id": pk})


urlpatterns: list[Any] = [
    path("sync/", sync_view),
    path("async/", async_view),
    path("items/<int:pk>/", item),
]
