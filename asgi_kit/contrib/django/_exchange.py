"""One request's trip through an ASGI middleware inside Django's middleware chain.

Private machinery behind :mod:`asgi_kit.contrib.django`.  An
:class:`Exchange` plays the ASGI *server* towards the wrapped middleware (it
builds the scope, serves ``receive`` from the request body and collects what
the middleware sends) and the ASGI *app* below it (``inner_app`` calls Django's
``get_response`` and sends the ``HttpResponse`` as ASGI messages).

Two flavours share that logic:

* :class:`AsyncExchange` runs under Django's ASGI handler: the middleware runs
  in its own task on the server's event loop, so a streamed answer keeps
  flowing after the adapter has handed Django its ``StreamingHttpResponse``.
* :class:`SyncExchange` runs under the WSGI handler: the middleware runs on
  one long-lived background event loop (so loop-bound clients such as
  ``redis.asyncio`` pools keep working from request to request) while every
  piece of synchronous Django work, the view, streaming iterators and
  ``wsgi.input`` reads, is handed back to the request's own thread, where
  Django's database connections and transactions live.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.http import HttpResponse, StreamingHttpResponse  # type: ignore[import-untyped]
from django.urls import Resolver404, resolve  # type: ignore[import-untyped]

from asgi_kit._routes import ANSWERED_BY_KEY, ROUTE_KEY, ROUTE_LOOKUP_KEY, django_route
from asgi_kit.types import ASGIApp, Headers, Message, Receive, Scope, Send

from ._internals import body_stream_started, preread_body, replace_body, take_over_closers
from ._response import apply_headers, response_headers

logger = logging.getLogger("asgi_kit.contrib.django")

#: Scope key carrying the per-request :class:`Exchange` down to ``inner_app``.
EXCHANGE_KEY = "asgi_kit.django.exchange"
#: Request attribute naming the middleware that answered a request without the
#: view ("" when it did not name itself), for the adapters further out.
ANSWERED_ATTR = "asgi_kit_answered_by"
#: Size of the ``http.request`` chunks served from the request body.
READ_CHUNK = 64 * 1024

_DONE = object()
_EMPTY_REQUEST: dict[str, Any] = {"type": "http.request", "body": b"", "more_body": False}
_MISSING = object()


def _next_chunk(iterator: Iterator[bytes]) -> object:
    # StopIteration cannot travel through a Future, hence the sentinel.
    return next(iterator, _DONE)


def _restore_context(ctx: contextvars.Context) -> None:
    """Apply variables changed inside ``ctx`` to the current context (as asgiref does)."""
    for var, value in ctx.items():
        if var.get(_MISSING) is not value:
            var.set(value)


class Exchange:
    """State of one request between the adapter, the middleware and the view."""

    def __init__(self, request: Any, scope: Scope, get_response: Callable[[Any], Any]) -> None:
        self.request = request
        self.scope = scope
        self.get_response = get_response
        self.response: Any = None
        self.sent_headers: Headers | None = None
        self.sent_body: bytes | None = None
        self.body_started = False
        self.body_done = False
        self.finished = False
        self.head_sent = False
        self._start: Message | None = None
        self.inner_scope: Scope | None = None
        self._complete: asyncio.Event | None = None
        scope[EXCHANGE_KEY] = self
        scope[ROUTE_LOOKUP_KEY] = self.lookup_route

    # ----------------------------------------------------------- mode-specific

    async def call_view(self, request: Any) -> Any:
        raise NotImplementedError

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    async def read_body(self, size: int) -> bytes:
        raise NotImplementedError

    def deliver_head(self, start: Message, body: bytes, more: bool) -> None:
        raise NotImplementedError

    async def push_chunk(self, body: bytes, more: bool) -> None:
        raise NotImplementedError

    def end(self, exc: BaseException | None) -> None:
        """The middleware returned (``exc`` is None) or raised ``exc``."""
        raise NotImplementedError

    # ----------------------------------------------------------- server side

    async def receive(self) -> Message:
        """The ``receive`` the wrapped middleware gets: the request body, then disconnect."""
        if not self.body_done:
            request = self.request
            if not self.body_started:
                self.body_started = True
                preread = preread_body(request)
                if preread is not None:
                    self.body_done = True
                    return {"type": "http.request", "body": preread, "more_body": False}
                if body_stream_started(request) or not _may_have_body(request.META):
                    # Nothing to read, or an earlier Django middleware already
                    # streamed it (multipart parsing): there is no body left.
                    self.body_done = True
                    return dict(_EMPTY_REQUEST)
            chunk = await self.read_body(READ_CHUNK)
            if not chunk:
                self.body_done = True
                return dict(_EMPTY_REQUEST)
            return {"type": "http.request", "body": chunk, "more_body": True}
        if self._complete is None:
            self._complete = asyncio.Event()
        if not self.finished:
            await self._complete.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """The ``send`` the wrapped middleware gets; it becomes the Django response."""
        kind = message.get("type")
        if kind == "http.response.start":
            if self._start is not None:
                raise RuntimeError("http.response.start sent twice")
            self._start = message
        elif kind == "http.response.body":
            start = self._start
            if start is None:
                raise RuntimeError("http.response.body sent before http.response.start")
            if self.finished:
                raise RuntimeError("http.response.body sent after the response was complete")
            body = bytes(message.get("body") or b"")
            more = bool(message.get("more_body", False))
            if not more:
                self._mark_finished()
            if not self.head_sent:
                self.head_sent = True
                self.deliver_head(start, body, more)
            else:
                await self.push_chunk(body, more)
        # Other message types (trailers, debug ...) were not offered in the
        # scope's extensions; like a server that does not know them, ignore.

    def lookup_route(self, scope: Scope) -> str | None:
        """The route Django's URL resolver gives this request (for requests the view never saw)."""
        try:
            match = resolve(self.request.path_info)
        except Resolver404:
            return None
        return django_route(_Resolved(match), scope)

    def release(self) -> None:
        """Drop the scopes' references to this exchange (no cycle left for the GC)."""
        for scope in (self.scope, self.inner_scope):
            if scope is not None and scope.get(EXCHANGE_KEY) is self:
                del scope[EXCHANGE_KEY]
                scope.pop(ROUTE_LOOKUP_KEY, None)

    def _mark_finished(self) -> None:
        self.finished = True
        if self._complete is not None:
            self._complete.set()

    # ----------------------------------------------------------- app side

    def reflect(self, scope: Scope) -> None:
        """Carry what the middleware changed in the scope over to the request."""
        request = self.request
        request.asgi_scope = scope
        self.inner_scope = scope
        if "scope" in request.__dict__:
            request.scope = scope  # ASGIRequest: request.scope["session"], scheme
        base = self.scope
        client = scope.get("client")
        if client != base.get("client") and client:
            meta = request.META
            if meta.get("REMOTE_HOST") == meta.get("REMOTE_ADDR"):
                meta["REMOTE_HOST"] = client[0]
            meta["REMOTE_ADDR"] = client[0]
            meta["REMOTE_PORT"] = client[1]
        scheme = scope.get("scheme")
        if scheme != base.get("scheme") and scheme and "wsgi.url_scheme" in request.META:
            request.META["wsgi.url_scheme"] = scheme

    async def replace_body(self, receive: Receive) -> None:
        """Make what the middleware passes on through ``receive`` the request body."""
        request = self.request
        if receive == self.receive and self.body_done:
            # The middleware read the whole body and kept it: as for an ASGI
            # app, nothing is left to read.
            message: Message = dict(_EMPTY_REQUEST)
        else:
            message = await receive()
        if message.get("type") == "http.disconnect":
            from django.core.exceptions import RequestAborted  # type: ignore[import-untyped]

            raise RequestAborted()
        first = bytes(message.get("body") or b"")
        if not message.get("more_body", False):
            stream: Any = io.BytesIO(first)
            size = len(first)
        else:
            # Spool like Django's ASGI handler: memory first, disk past the limit.
            stream = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (request owns it)
                max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
            )
            stream.write(first)
            size = len(first)
            while True:
                message = await receive()
                if message.get("type") == "http.disconnect":
                    stream.close()
                    from django.core.exceptions import RequestAborted

                    raise RequestAborted()
                chunk = message.get("body") or b""
                stream.write(chunk)
                size += len(chunk)
                if not message.get("more_body", False):
                    break
            stream.seek(0)
        replace_body(request, stream, size)

    async def inner_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app under the middleware: Django's view, as ASGI messages."""
        request = self.request
        self.reflect(scope)
        if receive != self.receive or self.body_started:
            await self.replace_body(receive)
        # Django's chain routes it from here on: no longer "answered early".
        self.scope.pop(ROUTE_LOOKUP_KEY, None)
        scope.pop(ROUTE_LOOKUP_KEY, None)
        response = await self.call_view(request)
        self.response = response
        route = django_route(request, scope)
        if route is not None:
            scope[ROUTE_KEY] = route
            self.scope[ROUTE_KEY] = route
        else:
            answered = request.__dict__.get(ANSWERED_ATTR)
            if answered is not None:
                # An adapter further in answered before Django routed: this
                # middleware (metrics) sees an early answer, as in one stack.
                for target in (scope, self.scope):
                    target[ROUTE_LOOKUP_KEY] = self.lookup_route
                    if answered:
                        target[ANSWERED_BY_KEY] = answered
        headers = response_headers(response)
        self.sent_headers = list(headers)
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        if not response.streaming:
            body = response.content
            self.sent_body = body
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        if response.is_async:
            content = response.streaming_content
            try:
                async for chunk in content:
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                await content.aclose()
        else:
            iterator = iter(response.streaming_content)
            while True:
                chunk = await self.run_sync(_next_chunk, iterator)
                if chunk is _DONE:
                    break
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def drive(self, app: ASGIApp) -> None:
        """Run the wrapped middleware for this request, reporting how it ended."""
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError as exc:
            self.end(exc)
            raise
        except BaseException as exc:
            self.end(exc)
        else:
            self.end(None)
        finally:
            self._mark_finished()

    # ----------------------------------------------------------- result

    def build_response(self, start: Message, body: bytes, more: bool, stream: Any) -> Any:
        """Turn what the middleware sent into the response Django returns.

        The view's own response object is kept (and patched) whenever its kind
        allows, so attributes Django and its test client rely on survive.
        ``stream`` is the iterator of the remaining chunks when ``more``.
        """
        status = int(start.get("status", 200))
        headers = [(bytes(k), bytes(v)) for k, v in start.get("headers") or ()]
        original = self.response
        if original is None and ANSWERED_ATTR not in self.request.__dict__:
            # The middleware answered without the view: tell outer adapters.
            self.request.__dict__[ANSWERED_ATTR] = self.scope.get(ANSWERED_BY_KEY) or ""
        if original is not None and original.streaming:
            apply_headers(original, status, headers, self.sent_headers)
            original.streaming_content = stream if more else self.single(body)
            return original
        if original is not None and not more:
            apply_headers(original, status, headers, self.sent_headers)
            if body != self.sent_body:
                original.content = body
            return original
        if more:
            response = StreamingHttpResponse(stream, status=status)
        else:
            response = HttpResponse(body, status=status)
        apply_headers(response, status, headers, None)
        if original is not None:
            # A buffered view answer the middleware turned into a stream:
            # the new object takes over the old one's resources.
            take_over_closers(response, original)
        return response

    def single(self, body: bytes) -> Any:
        raise NotImplementedError


class _Resolved:
    """A request-like holder of a ``ResolverMatch``, as :func:`django_route` reads it."""

    __slots__ = ("resolver_match",)

    def __init__(self, match: Any) -> None:
        self.resolver_match = match


def _may_have_body(meta: Any) -> bool:
    length = meta.get("CONTENT_LENGTH")
    if length:
        try:
            if int(length) > 0:
                return True
        except ValueError:
            return True
    return bool(meta.get("HTTP_TRANSFER_ENCODING"))


async def view_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app every adapter wraps: runs Django's view for the scope's exchange."""
    exchange = scope.get(EXCHANGE_KEY)
    if not isinstance(exchange, Exchange):
        raise RuntimeError(
            "asgi_kit Django adapter: the ASGI middleware called its app with a scope "
            "that is not a copy of the one it received"
        )
    await exchange.inner_app(scope, receive, send)
