"""ASGI type aliases used across asgi_kit.

The precise per-message ``TypedDict`` types live in :mod:`asgiref.typing` and
are re-exported here for users who want them.  Middleware signatures use the
loose, framework-compatible aliases below (the same shapes Starlette, FastAPI
and Litestar use), so ``app.add_middleware(SomeMiddleware, ...)`` type-checks
and any ASGI 3 callable can be wrapped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from asgiref.typing import (
    ASGI2Application,
    ASGI3Application,
    ASGIApplication,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    LifespanScope,
    WebSocketScope,
)

__all__ = [
    "ASGI2Application",
    "ASGI3Application",
    "ASGIApp",
    "ASGIApplication",
    "ASGIReceiveCallable",
    "ASGIReceiveEvent",
    "ASGISendCallable",
    "ASGISendEvent",
    "AnyASGIApp",
    "HTTPResponseBodyEvent",
    "HTTPResponseStartEvent",
    "HTTPScope",
    "Headers",
    "LifespanScope",
    "Message",
    "RawHeaders",
    "Receive",
    "Scope",
    "Send",
    "WebSocketScope",
]

#: A connection scope (``http``, ``websocket`` or ``lifespan``).
Scope = MutableMapping[str, Any]
#: One ASGI event, received or sent.
Message = MutableMapping[str, Any]
#: The ``receive`` awaitable callable.
Receive = Callable[[], Awaitable[Message]]
#: The ``send`` awaitable callable.
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 (single-callable) application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: What a middleware accepts as its ``app``: ASGI 3, or a legacy ASGI 2
#: double-callable, which is adapted with
#: :func:`asgiref.compatibility.guarantee_single_callable`.
AnyASGIApp = ASGIApp | Callable[[Scope], Callable[[Receive, Send], Awaitable[None]]]

#: Header list as found in a scope or a ``http.response.start`` message.
RawHeaders = Iterable[tuple[bytes, bytes]]
#: A mutable header list (what asgi_kit writes into messages).
Headers = list[tuple[bytes, bytes]]
