"""In-process drivers for the suite, built on :mod:`asgi_kit.testing`.

``call_http`` (:func:`asgi_kit.testing.request`) records every message (so
tests can check streaming, flushing and header order, which httpx's
ASGITransport hides by buffering); ``asgi_client`` gives an
``httpx.AsyncClient`` for ordinary request/response checks; ``websocket``
yields asgiref's ``ApplicationCommunicator`` of a
:func:`asgi_kit.testing.websocket` connection for handshake tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgiref.testing import ApplicationCommunicator

from asgi_kit import testing
from asgi_kit.testing import HeaderInput, http_scope, websocket_scope
from asgi_kit.types import ASGIApp, Scope

# The names the suite used before asgi_kit.testing existed.
raw_headers = testing.encode_headers
CapturedResponse = testing.Response
call_http = testing.request

__all__ = [
    "CapturedResponse",
    "HeaderInput",
    "asgi_client",
    "call_http",
    "http_scope",
    "raw_headers",
    "streaming_app",
    "websocket",
    "websocket_scope",
]


async def streaming_app(scope: Scope, receive: Any, send: Any) -> None:
    """Streams ``b"0"``, ``b"1"``, ``b"2"`` with ``more_body=True``, then an empty last chunk."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for i in range(3):
        await send({"type": "http.response.body", "body": b"%d" % i, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def asgi_client(
    app: ASGIApp, base_url: str = "http://testserver", **kwargs: Any
) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in-process (bodies are buffered)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs)


@asynccontextmanager
async def websocket(
    app: ASGIApp, scope: Scope | None = None, **scope_kwargs: Any
) -> AsyncIterator[ApplicationCommunicator]:
    """An ``ApplicationCommunicator`` for a WebSocket connection to ``app``.

    The caller sends ``{"type": "websocket.connect"}`` and reads the answer
    with ``receive_output``; the app task is cancelled on exit.
    """
    async with testing.websocket(app, scope=scope, connect=False, **scope_kwargs) as connection:
        yield connection.communicator
