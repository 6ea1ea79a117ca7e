"""Request ids: :class:`RequestIDMiddleware` and :func:`get_request_id`.

:class:`RequestIDMiddleware` gives every HTTP request and WebSocket connection
an id (a valid incoming ``X-Request-ID`` or a fresh one), echoes it on the
response, stores it in ``scope["state"]["request_id"]``, binds it in
:mod:`structlog.contextvars` for exactly the duration of the request, and
puts it on the current OpenTelemetry span.  :func:`get_request_id` reads it
from anywhere inside the request without structlog.

Also importable from :mod:`asgi_kit.logging`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextvars import copy_context

from opentelemetry.trace import get_current_span

from ._http import (
    TEXT_PLAIN,
    asgi3,
    header_value,
    normalize_header_name,
    send_response,
)
from ._log_context import restore_structlog, structlog_var
from ._plumbing.options import check_bool, check_str
from .types import AnyASGIApp, Message, Receive, Scope, Send

__all__ = [
    "REQUEST_ID_KEY",
    "RequestIDMiddleware",
    "get_request_id",
    "is_valid_request_id",
    "uuid4_hex",
]

# --------------------------------------------------------------------------- request id

#: Key under which the id is bound in structlog's contextvars and ``scope["state"]``.
REQUEST_ID_KEY = "request_id"

_ID_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
# Visible ASCII: what any id echoed in a header must be made of, whatever the validator says.
_VISIBLE = bytes(range(0x21, 0x7F))
MAX_ID_LENGTH = 128


def get_request_id() -> str | None:
    """The current request's id, or None outside a request.

    This is the ``request_id`` bound in :mod:`structlog.contextvars`, which
    :class:`RequestIDMiddleware` sets for the duration of each request and
    resets afterwards: one source of truth for logs and code.  Usable from
    code that does not log with structlog (stdlib logging filters, Sentry
    tags, outgoing HTTP calls, task payloads); code outside a request (a
    task worker) can bind its own ``request_id`` and this returns it.
    """
    value = _STRUCTLOG_REQUEST_ID.get()
    return None if value is ... else value  # structlog's "unbound" marker


def is_valid_request_id(value: str) -> bool:
    """The default validator: 1 to 128 characters of ``[A-Za-z0-9._:-]``.

    Accepts UUIDs (with or without dashes), nginx's ``$request_id``, trace ids
    and most load-balancer ids (AWS ``Root=1-…`` is rejected for its ``=``).
    """
    if not 0 < len(value) <= MAX_ID_LENGTH or not value.isascii():
        return False
    return not value.encode("ascii").translate(None, _ID_CHARS)


def uuid4_hex() -> str:
    """The default generator: a random (version 4) UUID as 32 hex digits.

    Equivalent to ``uuid.uuid4().hex`` (same bits, same format) at about a
    third of the cost, because no :class:`uuid.UUID` object is built.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


_STRUCTLOG_REQUEST_ID = structlog_var(REQUEST_ID_KEY)

_START_TYPES = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)


class RequestIDMiddleware:
    """Give every request an id that follows it into responses, logs and traces.

    Args:
        app: The ASGI application to wrap.
        header_name: Request and response header carrying the id.
        generator: Makes a new id; called when the request carries no valid one.
        validator: Decides whether an incoming id may be reused.  It receives
            the header value as ``str``; ids it accepts must also be visible
            ASCII (no spaces or control characters) to be reused.  ``None``
            means incoming ids are never trusted and every request gets a
            fresh one.  A validator that raises counts as a rejection.
        span_attribute: Attribute set to the id on the current OpenTelemetry
            span when one is recording; ``None`` disables it.
        error_response: When the app raises before starting an HTTP
            response, send a plain-text 500 carrying the id, then re-raise
            (so outer error handlers and the server still see the error).

    For each ``http`` and ``websocket`` scope the id is

    * echoed once in the response header ``header_name`` (replacing any
      header of that name the app set, so the response always carries the id
      that is in the logs); WebSocket handshakes carry it on the accept or the
      denial response;
    * stored in ``scope["state"]["request_id"]`` (``request.state.request_id``
      in Starlette/FastAPI);
    * bound as ``request_id`` in :mod:`structlog.contextvars` and returned by
      :func:`get_request_id` while the app runs; afterwards every structlog
      contextvar (``request_id`` and any key the app bound) is restored to
      what was bound before the request.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        header_name: str = "X-Request-ID",
        generator: Callable[[], str] = uuid4_hex,
        validator: Callable[[str], bool] | None = is_valid_request_id,
        *,
        span_attribute: str | None = "request.id",
        error_response: bool = False,
    ) -> None:
        self.app = asgi3(app)
        if not isinstance(header_name, str):
            raise TypeError(f"header_name must be a str, got {type(header_name).__name__}")
        self.header_name = header_name
        self._header = normalize_header_name(header_name, "header_name")
        if not callable(generator):
            raise TypeError("generator must be a callable returning a str")
        if validator is not None and not callable(validator):
            raise TypeError("validator must be a callable taking a str, or None")
        check_str("span_attribute", span_attribute, optional=True)
        # One sample catches a generator that cannot produce a header value
        # at start-up instead of as a 500 on the first request.
        sample = generator()
        if not isinstance(sample, str):
            raise TypeError(f"generator must return a str, returned {type(sample).__name__}")
        if not sample or not sample.isascii() or sample.encode().translate(None, _VISIBLE):
            raise ValueError(f"generator returned {sample!r}: ids must be visible ASCII")
        self.generator = generator
        self.validator = validator
        self.span_attribute = span_attribute
        self.error_response = check_bool("error_response", error_response)
        self._default_validator = validator is is_valid_request_id

    def _incoming(self, scope: Scope) -> tuple[str, bytes] | None:
        """The incoming id (text, header bytes) when a custom validator accepts it."""
        raw = header_value(scope["headers"], self._header)
        if raw is None:
            return None
        if not raw or len(raw) > 1024 or raw.translate(None, _VISIBLE):
            return None
        text = raw.decode("ascii")
        try:
            ok = self.validator(text)  # type: ignore[misc]
        except Exception:
            return None
        return (text, raw) if ok else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            await self.app(scope, receive, send)
            return

        if self._default_validator:
            # Inlined fast path of is_valid_request_id, on the raw bytes.
            encoded = header_value(scope["headers"], self._header)
            if (
                encoded is not None
                and 0 < len(encoded) <= MAX_ID_LENGTH
                and not encoded.translate(None, _ID_CHARS)
            ):
                request_id = encoded.decode("ascii")
            else:
                request_id = self.generator()
                encoded = request_id.encode("latin-1")
        else:
            incoming = self._incoming(scope) if self.validator is not None else None
            if incoming is None:
                request_id = self.generator()
                encoded = request_id.encode("latin-1")
            else:
                request_id, encoded = incoming

        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state[REQUEST_ID_KEY] = request_id

        span_attribute = self.span_attribute
        if span_attribute is not None:
            span = get_current_span()
            if span.is_recording():
                span.set_attribute(span_attribute, request_id)
                span_attribute = None

        header = self._header
        header_len = len(header)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] in _START_TYPES:
                started = True
                if span_attribute is not None:
                    # In the recommended order TracingMiddleware sits inside
                    # this one: its span is current only while the app runs.
                    inner = get_current_span()
                    if inner.is_recording():
                        inner.set_attribute(span_attribute, request_id)
                # Copy instead of mutating: apps may reuse a module-level
                # message or header list, which would grow on every request.
                headers = message.get("headers") or ()
                if header_value(headers, header) is None:
                    message = {**message, "headers": [*headers, (header, encoded)]}
                else:
                    kept = [
                        (k, v)
                        for k, v in headers
                        if not (len(k) == header_len and k.lower() == header)
                    ]
                    kept.append((header, encoded))
                    message = {**message, "headers": kept}
            await send(message)

        before = copy_context()
        token = _STRUCTLOG_REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if self.error_response and not started and scope_type == "http":
                # Answer the 500 here, where the id is known, instead of
                # leaving it to an outer handler that cannot add the header.
                try:
                    await send_response(
                        send, 500, b"Internal Server Error", TEXT_PLAIN, [(header, encoded)]
                    )
                except OSError:
                    pass  # the client is gone; the original error still propagates
            raise
        finally:
            _STRUCTLOG_REQUEST_ID.reset(token)
            restore_structlog(before)
