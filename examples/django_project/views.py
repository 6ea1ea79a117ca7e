"""Views of the example project."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse


def index(request: HttpRequest) -> JsonResponse:
    """A JSON answer big enough to be compressed."""
    return JsonResponse({"hello": "asgi_kit", "items": [{"id": i} for i in range(100)]})


def item(request: HttpRequest, pk: int) -> JsonResponse:
    """Metrics and traces name this route ``/items/<int:pk>``, never ``/items/42``."""
    return JsonResponse({"id": pk})


def counter(request: HttpRequest) -> JsonResponse:
    """asgi_kit's session lives in the ASGI scope; Django's request.session is separate."""
    session = request.asgi_scope["session"]  # type: ignore[attr-defined]
    session["count"] = session.get("count", 0) + 1
    return JsonResponse({"count": session["count"]})


def limited(request: HttpRequest) -> JsonResponse:
    """Rate limited to 5 requests a minute per client."""
    return JsonResponse({"ok": True})


def events(request: HttpRequest) -> StreamingHttpResponse:
    """Server-Sent Events: each event reaches the client when produced, compressed or not.

    Five ticks, ``?interval=`` seconds apart (default 0.5, at most 2).  An
    async iterator streams every way this project runs: Django's own ASGI
    handler would collect a synchronous iterator whole before sending it
    (the MIDDLEWARE adapters stream both kinds).
    """
    try:
        interval = min(max(float(request.GET.get("interval", "0.5")), 0.0), 2.0)
    except ValueError:
        interval = 0.5

    async def stream() -> AsyncIterator[bytes]:
        for i in range(5):
            if i:
                await asyncio.sleep(interval)
            yield f"data: tick {i}\n\n".encode()

    return StreamingHttpResponse(stream(), content_type="text/event-stream")
