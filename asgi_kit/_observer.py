"""What happened to one request, by one set of rules: the response observer.

Tracing, metrics and the access log each watch the messages between the
server and the app.  They all do it through the observers here, so a request
is reported the same way in the span, the metric labels and the log line:

Methods
    :func:`known_methods` builds the set of methods reported as themselves
    (the OpenTelemetry semantic-convention list, or
    ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS``); any other method, including
    a known one spelled in another case (``get``), is reported as
    ``_OTHER``.  Methods are case-sensitive (RFC 9110 §9.1), as the
    conventions require; the span also carries the original spelling.

Status (:meth:`HTTPObserver.final_status`)
    The status of the app's ``http.response.start``.  A start message without
    a usable ``status`` (missing, not an integer, outside 100..999) counts as
    ``500``: no server can send it, the client gets a server error.  When no
    response was started, the request counts as ``499`` (nginx's "client
    closed request") if the client went away first, else ``500`` (the app
    raised, or returned without answering: the server answers 500).

Bytes
    In: the body bytes the app actually read (``http.request`` messages it
    received).  Out: the body bytes it sent (``http.response.body``; for
    ``zerocopysend``/``pathsend`` the ``count`` or ``Content-Length``).

Completion and disconnect
    A response is complete once its last body message was handed to the
    server.  The client disconnected when, before completion, the app
    received ``http.disconnect``, a send raised :class:`OSError` (what ASGI
    servers raise for a gone client) or the server cancelled the app.

Exceptions
    An exception from the app is its error, unless the client had gone
    before it (a disconnect received or a failed send): the app reacting to
    a gone client (Starlette's ``ClientDisconnect``, an ``OSError`` from
    ``send``) is a disconnect, not an application error.

WebSocket (:class:`WebSocketObserver`)
    ``websocket.accept`` is status ``101``; closing before accepting refuses
    the handshake, status ``403`` (what servers answer); a denial response
    (``websocket.http.response.start``) has its own status.  The close code
    is the first of the app's ``websocket.close`` (default 1000) and the
    client's ``websocket.disconnect`` (default 1005).  With nothing sent, the
    same 499/500 rule as HTTP applies.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from time import perf_counter
from typing import Any

from ._http import header_value
from .types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_KNOWN_METHODS",
    "ENV_KNOWN_METHODS",
    "OTHER_METHOD",
    "STATUS_CLIENT_CLOSED",
    "STATUS_NO_RESPONSE",
    "HTTPObserver",
    "WebSocketObserver",
    "known_methods",
    "response_status",
]

#: Methods the HTTP semantic conventions list as known.
DEFAULT_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)
#: The environment variable OpenTelemetry instrumentations read for that list.
ENV_KNOWN_METHODS = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"
#: How a method outside the known set is reported (a bounded label).
OTHER_METHOD = "_OTHER"
#: A request whose client left before any response was started.
STATUS_CLIENT_CLOSED = 499
#: A request no response was started for (or an unusable start message).
STATUS_NO_RESPONSE = 500
#: ``websocket.accept``.
STATUS_WEBSOCKET_ACCEPTED = 101
#: ``websocket.close`` before accepting: the server refuses the handshake.
STATUS_WEBSOCKET_REFUSED = 403


def known_methods(value: Iterable[str] | None, option: str = "known_methods") -> frozenset[str]:
    """The methods reported as themselves: ``value``, else the environment, else the default.

    Names are stripped and upper-cased (configuration is written ``GET,PURGE``
    or ``get,purge`` alike); requests still match them exactly.
    """
    if value is None:
        env = os.environ.get(ENV_KNOWN_METHODS)
        if not env or not env.strip():
            return DEFAULT_KNOWN_METHODS
        value = env.split(",")
    elif isinstance(value, (str, bytes)):
        raise TypeError(f"{option} must be a list of method names, not a string")
    methods: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{option}: method names must be strings, got {item!r}")
        item = item.strip()
        if item:
            methods.add(item.upper())
    return frozenset(methods)


def response_status(message: Message) -> int:
    """The status of a start message; an unusable one counts as 500 (see the module)."""
    status = message.get("status")
    if type(status) is not int:
        if not isinstance(status, int) or isinstance(status, bool):
            return STATUS_NO_RESPONSE
        status = int(status)  # an IntEnum such as HTTPStatus.OK
    return status if 100 <= status <= 999 else STATUS_NO_RESPONSE


def _content_length(headers: Any) -> int:
    if headers:
        value = header_value(headers, b"content-length")
        if value is not None and value.isdigit():
            return int(value)
    return 0


class _Observer:
    """What the HTTP and WebSocket observers share: the exit rules and :meth:`run`."""

    # Class-level defaults instead of __slots__: a request then costs one
    # small instance dict, about half the construction time of a dozen slot
    # stores, and most requests never write most of these.
    #: Status of the start message (0 until one was sent).
    status = 0
    response_bytes = 0
    disconnected = False
    send_failed = False
    error: BaseException | None = None

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send

    async def receive(self) -> Message:
        raise NotImplementedError

    async def send(self, message: Message) -> None:
        raise NotImplementedError

    async def run(self, app: ASGIApp, scope: Scope, send: Send | None = None) -> None:
        """Run ``app`` under observation (``send``: a wrapper of :meth:`send` to pass instead).

        Records a cancellation (the server's sign that the client left) or an
        exception by the rules, and re-raises it.  The per-request HTTP paths
        spell these lines out instead of awaiting this: one coroutine less
        per request.
        """
        try:
            await app(scope, self.receive, self.send if send is None else send)
        except asyncio.CancelledError:
            self.cancelled()
            raise
        except Exception as exc:
            self.raised(exc)
            raise

    def cancelled(self) -> None:
        """The server cancelled the app: the client went away."""
        self.disconnected = True

    def raised(self, exc: BaseException) -> None:
        """The app raised ``exc``: its error, unless the client had gone before."""
        if not self.disconnected:
            self.error = exc

    def final_status(self) -> int:
        """The status sent, else 499 (the client left first) or 500 (see the module)."""
        status = self.status
        if status:
            return status
        return STATUS_CLIENT_CLOSED if self.disconnected else STATUS_NO_RESPONSE


class HTTPObserver(_Observer):
    """Watches one HTTP request; pass :meth:`receive` and :meth:`send` to the app.

    Subclasses react at the two moments reporters care about by overriding
    :meth:`started` (the start message, which it may replace) and
    :meth:`completed`.  Run the app with :meth:`run`, then read
    :meth:`final_status` and the counters.
    """

    request_bytes = 0
    start_headers: Any = None
    #: ``perf_counter()`` when the last body message was sent (0.0: not yet).
    completed_at = 0.0
    # Whether a subclass overrides the hooks: the base skips calling no-ops.
    _hooks_start = False
    _hooks_complete = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._hooks_start = cls.started is not HTTPObserver.started
        cls._hooks_complete = cls.completed is not HTTPObserver.completed

    def started(self, message: Message) -> Message:
        """Hook: the app's ``http.response.start``; returns the message to send on."""
        return message

    def completed(self) -> None:
        """Hook: the last body message was handed to the server."""

    async def receive(self) -> Message:
        message = await self._receive()
        body = message.get("body")
        if body:
            self.request_bytes += len(body)
        elif message["type"] == "http.disconnect" and not self.completed_at:
            self.disconnected = True
        return message

    async def send(self, message: Message) -> None:
        mtype = message["type"]
        if mtype == "http.response.body":
            body = message.get("body")
            if body:
                self.response_bytes += len(body)
            final = not message.get("more_body")
        elif mtype == "http.response.start":
            status = message.get("status")
            self.status = (
                status if type(status) is int and 100 <= status <= 999 else response_status(message)
            )
            self.start_headers = message.get("headers")
            if self._hooks_start:
                message = self.started(message)
            final = False
        elif mtype == "http.response.zerocopysend":
            count = message.get("count")
            self.response_bytes += (
                count if isinstance(count, int) else _content_length(self.start_headers)
            )
            final = not message.get("more_body")
        elif mtype == "http.response.pathsend":
            self.response_bytes += _content_length(self.start_headers)
            final = True
        else:
            final = False
        try:
            await self._send(message)
        except OSError:
            # ASGI servers raise an OSError subclass when the client is gone.
            self.send_failed = True
            if not self.completed_at:
                self.disconnected = True
            raise
        if final and not self.completed_at:
            self.completed_at = perf_counter()
            if self._hooks_complete:
                self.completed()

    def cancelled(self) -> None:
        """The server cancelled the app: the client went away (unless it was answered)."""
        if not self.completed_at:
            self.disconnected = True


def _ws_size(message: Message) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text")
    return len(text.encode("utf-8")) if text is not None else 0


def _code(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class WebSocketObserver(_Observer):
    """Watches one WebSocket connection; the same rules as :class:`HTTPObserver`.

    ``bytes_in``/``bytes_out`` count message payloads (text as UTF-8);
    ``response_bytes`` is the body of a denial response.  Subclasses override
    :meth:`accepting` (called before the accept is sent) and :meth:`started`
    (a denial response's start message, which it may replace).
    """

    close_code: int | None = None
    bytes_in = 0
    bytes_out = 0
    #: ``perf_counter()`` when the app accepted (0.0: not accepted).
    accepted_at = 0.0

    def accepting(self) -> None:
        """Hook: the app is accepting the connection."""

    def started(self, message: Message) -> Message:
        """Hook: a denial response's ``websocket.http.response.start``."""
        return message

    async def receive(self) -> Message:
        message = await self._receive()
        mtype = message["type"]
        if mtype == "websocket.receive":
            self.bytes_in += _ws_size(message)
        elif mtype == "websocket.disconnect" and self.close_code is None:
            # The client closed first (the app had not sent websocket.close).
            self.disconnected = True
            self.close_code = _code(message.get("code"), 1005)
        return message

    async def send(self, message: Message) -> None:
        mtype = message["type"]
        if mtype == "websocket.send":
            self.bytes_out += _ws_size(message)
        elif mtype == "websocket.accept":
            if not self.status:
                self.status = STATUS_WEBSOCKET_ACCEPTED
                self.accepted_at = perf_counter()
                self.accepting()
        elif mtype == "websocket.close":
            if not self.status:
                self.status = STATUS_WEBSOCKET_REFUSED
            if self.close_code is None:
                self.close_code = _code(message.get("code"), 1000)
        elif mtype == "websocket.http.response.start":
            self.status = response_status(message)
            message = self.started(message)
        elif mtype == "websocket.http.response.body":
            body = message.get("body")
            if body:
                self.response_bytes += len(body)
        try:
            await self._send(message)
        except OSError:
            self.disconnected = self.send_failed = True
            raise
