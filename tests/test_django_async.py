"""The exchange under Django's ASGI handler (asgi_kit.contrib.django._async)."""

from __future__ import annotations

import asyncio
from typing import Any

import django
import pytest

from tests._support.django import _reset  # noqa: F401 (autouse: configures Django)
from tests.apps.django_project import views


@pytest.mark.skipif(
    django.VERSION < (5, 0), reason="Django's ASGI handler watches for disconnects since 5.0"
)
async def test_client_disconnect_under_asgi_cancels_middleware_and_view() -> None:
    from django.core.asgi import get_asgi_application

    from tests._support.asgi import http_scope

    app = get_asgi_application()
    sent: list[Any] = []
    calls = 0

    async def receive() -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        while not views.CALLS.get("slow_started"):
            await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await asyncio.wait_for(app(http_scope("GET", "/slow"), receive, send), timeout=5)
    assert views.CALLS.get("slow_cancelled") == 1
    assert sent == []
