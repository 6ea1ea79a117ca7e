"""ASGI 2 (double-callable) applications are adapted transparently."""

from __future__ import annotations

from typing import Any

from asgi_kit._http import asgi3

from ._support.asgi import call_http


class LegacyApp:
    """An ASGI 2 application: instantiated per scope, then awaited."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": self.scope["path"].encode()})


async def modern_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_asgi2_class_is_adapted() -> None:
    response = await call_http(asgi3(LegacyApp), path="/legacy")
    assert response.status == 200
    assert response.body == b"/legacy"


async def test_asgi3_app_is_returned_unchanged() -> None:
    assert asgi3(modern_app) is modern_app
    response = await call_http(asgi3(modern_app))
    assert (response.status, response.body) == (201, b"ok")
