"""Views of the test project."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import structlog
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from .mw import REQUEST_TAG

#: How many times each view ran, and how many stream chunks were produced.
CALLS: dict[str, int] = {}
PRODUCED: dict[str, int] = {}


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


def _describe(request: HttpRequest) -> dict[str, Any]:
    asgi_scope = getattr(request, "asgi_scope", {})
    scope = getattr(request, "scope", None)
    return {
        "path": request.path,
        "n": request.GET.get("n"),
        "method": request.method,
        "tag": REQUEST_TAG.get(),
        "structlog": structlog.contextvars.get_contextvars(),
        "remote_addr": request.META.get("REMOTE_ADDR"),
        "scheme": request.scheme,
        "state": asgi_scope.get("state", {}),
        "session": asgi_scope.get("session"),
        "scope_session": scope.get("session") if isinstance(scope, dict) else None,
        "has_request_scope": scope is not None,
        "thread": threading.get_ident(),
    }


def json_view(request: HttpRequest) -> JsonResponse:
    _count("json")
    response = JsonResponse(_describe(request))
    response.set_cookie("view_cookie", "v1", httponly=True)
    return response


async def async_json_view(request: HttpRequest) -> JsonResponse:
    _count("async_json")
    await asyncio.sleep(0)
    return JsonResponse(_describe(request))


async def slow_view(request: HttpRequest) -> JsonResponse:
    """Sleeps; records whether it was cancelled (client gone)."""
    CALLS["slow_started"] = 1
    try:
        await asyncio.sleep(2)
    except asyncio.CancelledError:
        # Clean-up that takes a moment (closing a cursor, a remote call):
        # it must be over before Django's handler finishes the request.
        await asyncio.sleep(0.05)
        CALLS["slow_cancelled"] = 1
        raise
    return JsonResponse({"slept": True})


def item_view(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse({"pk": pk})


def legacy_view(request: HttpRequest, year: str) -> JsonResponse:
    return JsonResponse({"year": year})


def echo_view(request: HttpRequest) -> HttpResponse:
    _count("echo")
    return HttpResponse(
        request.body,
        content_type="application/octet-stream",
        headers={"X-Body-Length": str(len(request.body))},
    )


def form_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"name": request.POST.get("name"), "files": sorted(request.FILES)})


def limited_view(request: HttpRequest) -> HttpResponse:
    _count("limited")
    return HttpResponse("the view ran")


def boom_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("view exploded")


def stream_view(request: HttpRequest) -> StreamingHttpResponse:
    """A sync generator; ``?delay=`` sleeps between chunks (for the socket tests)."""
    delay = float(request.GET.get("delay", "0"))
    PRODUCED["sync"] = 0

    def chunks() -> Iterator[bytes]:
        try:
            for i in range(5):
                if delay and i:
                    time.sleep(delay)
                PRODUCED["sync"] += 1
                yield f"chunk {i}\n".encode()
        finally:
            PRODUCED["sync_closed"] = 1

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def async_stream_view(request: HttpRequest) -> StreamingHttpResponse:
    """An async generator, served by a sync view."""
    delay = float(request.GET.get("delay", "0"))
    PRODUCED["async"] = 0

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            if delay and i:
                await asyncio.sleep(delay)
            PRODUCED["async"] += 1
            yield f"achunk {i}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def info_view(request: HttpRequest) -> HttpResponse:
    """Plain text, so json tests can compare it byte for byte."""
    return HttpResponse(json.dumps(_describe(request)), content_type="text/plain")
