"""What the middleware's side of an exchange reports to the request's side.

Under the WSGI handler the middleware runs on a background loop and the
request thread waits on a queue of these; under the ASGI handler the first
one, :class:`ResponseHead`, resolves a future.  Named types instead of tagged
tuples, so each kind says what it carries.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, NamedTuple

from asgi_kit.types import Message

__all__ = ["BodyChunk", "MiddlewareEnded", "ResponseHead", "SyncCall"]


class SyncCall(NamedTuple):
    """Run ``func(*args)`` in ``context`` on the request thread; settle ``future``."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    context: contextvars.Context
    future: asyncio.Future[Any]


class ResponseHead(NamedTuple):
    """The middleware's ``http.response.start`` and first body chunk."""

    start: Message
    body: bytes
    more: bool


class BodyChunk(NamedTuple):
    """A further body chunk; ``ack`` is settled once the consumer took it."""

    body: bytes
    ack: asyncio.Future[None]


class MiddlewareEnded(NamedTuple):
    """The middleware returned (``error`` is None) or raised ``error``."""

    error: BaseException | None
