"""Every private name of Django the adapters touch, in one place, with why.

Django has no public API for what the adapters must do to stand between
its middleware chain and an ASGI middleware:

* know whether a request's body was already read or streamed by an earlier
  middleware (``request.body`` would read it; reading a started stream
  raises ``RawPostDataException``), hence ``_body`` and ``_read_started``;
* hand the view the body an ASGI middleware passed on (a middleware may
  replace or decompress it), hence ``_stream``, ``_read_started`` and the
  cached ``_body``/``_post``/``_files``, exactly what ``HttpRequest.__init__``
  and the WSGI/ASGI handlers set;
* make ``response.close()`` stop the middleware's task first, even when a
  stream was never iterated, and move a replaced response's cleanups to its
  replacement, hence ``_resource_closers`` (setting ``streaming_content``
  registers the iterable's ``close()``, but last, and a buffered response's
  cleanups cannot be handed over at all).

tests/test_django_internals.py checks each assumption against the installed
Django, so an upgrade that moves one fails there first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from django.core.handlers.wsgi import LimitedStream  # type: ignore[import-untyped]

__all__ = [
    "body_stream_started",
    "first_closer",
    "preread_body",
    "replace_body",
    "take_over_closers",
]


def preread_body(request: Any) -> bytes | None:
    """The body an earlier middleware read into memory (``request.body``), or None."""
    body = request.__dict__.get("_body")
    return body if isinstance(body, bytes) else None


def body_stream_started(request: Any) -> bool:
    """Whether something already read from the request's body stream."""
    return bool(request._read_started)


def replace_body(request: Any, stream: IO[bytes], size: int) -> None:
    """Make ``stream`` (``size`` bytes) the body the view reads, as Django's handlers do."""
    for attr in ("_body", "_post", "_files"):
        request.__dict__.pop(attr, None)
    request._stream = LimitedStream(stream, size)
    request._read_started = False
    request.META["CONTENT_LENGTH"] = str(size)


def first_closer(response: Any, closer: Callable[[], None]) -> None:
    """Run ``closer`` first when Django closes ``response``."""
    response._resource_closers.insert(0, closer)


def take_over_closers(response: Any, replaced: Any) -> None:
    """``response`` replaces ``replaced``: it runs the cleanups ``replaced`` would have run."""
    response._resource_closers.extend(replaced._resource_closers)
    replaced._resource_closers.clear()
