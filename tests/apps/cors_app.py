"""The demo app behind CORSMiddleware, served by real servers in the e2e tests.

HTTP requests get a small body echoing the ``Cookie`` header (to show a
credentialed request arrived with its cookie); lifespan and the ``/ws`` echo
come from the demo app (``examples/`` is on the servers' path).
"""

from __future__ import annotations

from typing import Any

from demo_app import demo_app

from asgi_kit import CORSMiddleware
from asgi_kit._http import header_value, send_response


async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await demo_app(scope, receive, send)
        return
    body = b"cookie=" + (header_value(scope["headers"], b"cookie") or b"")
    extra = [(b"vary", b"Accept-Encoding"), (b"x-total", b"7")]
    await send_response(send, 200, body, b"text/plain", extra)


app = CORSMiddleware(
    inner,
    allow_origins=["https://app.example.com"],
    allow_methods=["GET", "POST", "PUT"],
    allow_headers=["X-Token"],
    allow_credentials=True,
    expose_headers=["X-Total"],
    max_age=120,
)
