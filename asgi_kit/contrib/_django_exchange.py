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
import os
import queue
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.client import responses as _REASONS
from http.cookies import Morsel, SimpleCookie
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings  # type: ignore[import-untyped]
from django.core.handlers.wsgi import LimitedStream  # type: ignore[import-untyped]
from django.http import HttpResponse, StreamingHttpResponse  # type: ignore[import-untyped]
from django.utils.encoding import escape_uri_path  # type: ignore[import-untyped]

from asgi_kit._http import ROUTE_KEY
from asgi_kit.types import ASGIApp, Headers, Message, Receive, Scope, Send

logger = logging.getLogger("asgi_kit.contrib.django")

#: Scope key carrying the per-request :class:`Exchange` down to ``inner_app``.
EXCHANGE_KEY = "asgi_kit.django.exchange"
#: Size of the ``http.request`` chunks served from the request body.
READ_CHUNK = 64 * 1024

_DONE = object()
_EMPTY_REQUEST: dict[str, Any] = {"type": "http.request", "body": b"", "more_body": False}
_ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
_MISSING = object()


def _next_chunk(iterator: Iterator[bytes]) -> object:
    # StopIteration cannot travel through a Future, hence the sentinel.
    return next(iterator, _DONE)


def _restore_context(ctx: contextvars.Context) -> None:
    """Apply variables changed inside ``ctx`` to the current context (as asgiref does)."""
    for var, value in ctx.items():
        if var.get(_MISSING) is not value:
            var.set(value)


# --------------------------------------------------------------------------- scope


def build_scope(request: Any) -> Scope:
    """The ASGI ``http`` scope the wrapped middleware sees for ``request``.

    An outer adapter's scope (``request.asgi_scope``) or the ASGI server's own
    scope (``request.scope`` under Django's ASGI handler) is reused, shallow
    copied; under WSGI the scope is built from ``request.META``.
    """
    base = getattr(request, "asgi_scope", None)
    if base is None:
        base = getattr(request, "scope", None)
    if isinstance(base, dict) and base.get("type") == "http":
        scope = dict(base)
        scope.setdefault("root_path", "")
        scope.setdefault("query_string", b"")
        scope.setdefault("headers", [])
        # Server extensions (trailers, pathsend, zero-copy ...) are not
        # something Django's response path can carry.
        scope["extensions"] = {}
        state = base.get("state")
        scope["state"] = dict(state) if state else {}
        return scope
    return _scope_from_meta(request)


def _scope_from_meta(request: Any) -> Scope:
    meta = request.META
    headers: Headers = []
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if not value:
                continue
            name = key.replace("_", "-").lower()
        else:
            continue
        headers.append((name.encode("latin-1"), _wsgi_bytes(value)))
    protocol = str(meta.get("SERVER_PROTOCOL") or "HTTP/1.1")
    remote = meta.get("REMOTE_ADDR")
    client = (str(remote), _port(meta.get("REMOTE_PORT"))) if remote else None
    server_name = meta.get("SERVER_NAME")
    server = (str(server_name), _port(meta.get("SERVER_PORT"))) if server_name else None
    path = request.path
    return {
        "type": "http",
        "asgi": dict(_ASGI_VERSION),
        "http_version": protocol.partition("/")[2] or "1.1",
        "method": request.method,
        "scheme": str(meta.get("wsgi.url_scheme") or "http"),
        "path": path,
        "raw_path": escape_uri_path(path).encode("ascii"),
        "query_string": _wsgi_bytes(meta.get("QUERY_STRING") or ""),
        "root_path": str(meta.get("SCRIPT_NAME") or ""),
        "headers": headers,
        "client": client,
        "server": server,
        "extensions": {},
        "state": {},
    }


def _wsgi_bytes(value: object) -> bytes:
    # PEP 3333 strings carry bytes as latin-1; test clients may pass any text.
    text = str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _port(value: object) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def route_of(request: Any, scope: Scope) -> str | None:
    """``request.resolver_match.route`` as an absolute template (``/items/<int:pk>``)."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not isinstance(route, str):
        return None
    # re_path() routes are regexes: drop the anchors, keep the pattern.
    if route.startswith("^"):
        route = route[1:]
    if route.endswith("\\Z"):
        route = route[:-2]
    elif route.endswith("$"):
        route = route[:-1]
    root = scope.get("root_path") or ""
    prefix = root.rstrip("/") if isinstance(root, str) else ""
    return f"{prefix}/{route.lstrip('/')}"


# --------------------------------------------------------------------------- responses


class RawSetCookie(Morsel):  # type: ignore[type-arg]
    """A ``Set-Cookie`` value sent by the middleware, kept byte for byte.

    It sits in ``response.cookies`` under its cookie name, so Django and the
    test client see it (``response.cookies["session"].value``).  When Django
    code later changes it (``response.set_cookie(...)``) the morsel is
    serialised from its attributes as usual.
    """

    def __init__(self, name: str, value: str, raw: str) -> None:
        super().__init__()
        # Morsel.set() would reject names Django never has to produce itself.
        self._key = name
        self._value = value
        self._coded_value = value
        self._raw = raw
        self._raw_value = value

    def OutputString(self, attrs: Any = None) -> str:
        raw = getattr(self, "_raw", None)  # absent after unpickling (cache middleware)
        if raw is not None and self._value == self._raw_value and not any(dict.values(self)):
            return str(raw)
        return str(super().OutputString(attrs))


def response_headers(response: Any) -> Headers:
    """``response``'s headers as ASGI header pairs, names as Django writes them."""
    headers: Headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
    for morsel in response.cookies.values():
        headers.append((b"Set-Cookie", morsel.output(header="").strip().encode("latin-1")))
    return headers


def apply_headers(response: Any, status: int, headers: Headers, sent: Headers | None) -> None:
    """Make ``response`` carry ``status`` and exactly ``headers``.

    ``sent`` is what the adapter sent down for this response: when the
    middleware left the headers alone nothing is rebuilt.  Repeated names are
    joined with ``", "`` (Django keeps one value per name); ``Set-Cookie``
    lines go to ``response.cookies`` unchanged.
    """
    if status != response.status_code:
        response.status_code = status
        response.reason_phrase = _REASONS.get(status, "Unknown Status Code")
    if sent is not None and headers == sent:
        return
    merged: dict[str, tuple[str, list[str]]] = {}
    cookies: list[str] = []
    for raw_name, raw_value in headers:
        name = bytes(raw_name).decode("latin-1")
        value = bytes(raw_value).decode("latin-1")
        lower = name.lower()
        if lower == "set-cookie":
            cookies.append(value)
            continue
        entry = merged.get(lower)
        if entry is None:
            merged[lower] = (name, [value])
        else:
            entry[1].append(value)
    store = response.headers
    for key in list(store):
        del store[key]
    for name, values in merged.values():
        store[name] = values[0] if len(values) == 1 else ", ".join(values)
    sent_cookies = (
        [bytes(v).decode("latin-1") for k, v in sent if k.lower() == b"set-cookie"]
        if sent is not None
        else None
    )
    if cookies != sent_cookies:
        jar: SimpleCookie = SimpleCookie()
        for index, raw in enumerate(cookies):
            pair = raw.partition(";")[0]
            name, _, value = pair.partition("=")
            name = name.strip() or f"cookie-{index}"
            key = name if name not in jar else f"{name}#{index}"
            dict.__setitem__(jar, key, RawSetCookie(name, value.strip(), raw))
        response.cookies = jar


# --------------------------------------------------------------------------- exchange


class Exchange:
    """State of one request between the adapter, the middleware and the view."""

    is_async = True

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
                preread = request.__dict__.get("_body")
                if preread is not None:
                    self.body_done = True
                    return {"type": "http.request", "body": preread, "more_body": False}
                if request._read_started or not _may_have_body(request.META):
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

    def release(self) -> None:
        """Drop the scopes' references to this exchange (no cycle left for the GC)."""
        for scope in (self.scope, self.inner_scope):
            if scope is not None and scope.get(EXCHANGE_KEY) is self:
                del scope[EXCHANGE_KEY]

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
        for attr in ("_body", "_post", "_files"):
            request.__dict__.pop(attr, None)
        request._stream = LimitedStream(stream, size)
        request._read_started = False
        request.META["CONTENT_LENGTH"] = str(size)

    async def inner_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app under the middleware: Django's view, as ASGI messages."""
        request = self.request
        self.reflect(scope)
        if receive != self.receive or self.body_started:
            await self.replace_body(receive)
        response = await self.call_view(request)
        self.response = response
        route = route_of(request, scope)
        if route is not None:
            scope[ROUTE_KEY] = route
            self.scope[ROUTE_KEY] = route
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
            response._resource_closers.extend(original._resource_closers)
            original._resource_closers.clear()
        return response

    def single(self, body: bytes) -> Any:
        raise NotImplementedError


def _may_have_body(meta: Any) -> bool:
    length = meta.get("CONTENT_LENGTH")
    if length:
        try:
            if int(length) > 0:
                return True
        except ValueError:
            return True
    return bool(meta.get("HTTP_TRANSFER_ENCODING"))


# --------------------------------------------------------------------------- async


class AsyncExchange(Exchange):
    """Under Django's ASGI handler: the middleware runs in a task on the server's loop."""

    def __init__(self, request: Any, scope: Scope, get_response: Callable[[Any], Any]) -> None:
        super().__init__(request, scope, get_response)
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.head: asyncio.Future[tuple[Message, bytes, bool]] = loop.create_future()
        # Made for streamed answers only.  Unbounded, but push_chunk() waits
        # until the consumer took each chunk.
        self.chunks: asyncio.Queue[object] | None = None
        self.task: asyncio.Task[None] | None = None

    async def call_view(self, request: Any) -> Any:
        return await self.get_response(request)

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        return await sync_to_async(func, thread_sensitive=True)(*args)

    async def read_body(self, size: int) -> bytes:
        # Django's ASGI handler has already spooled the body (memory or a
        # local temporary file), exactly as it reads it for views.
        return bytes(self.request.read(size))

    def deliver_head(self, start: Message, body: bytes, more: bool) -> None:
        if more:
            self.chunks = asyncio.Queue()
        if not self.head.done():
            self.head.set_result((start, body, more))

    async def push_chunk(self, body: bytes, more: bool) -> None:
        if body and self.chunks is not None:
            self.chunks.put_nowait(body)
            await self.chunks.join()

    def end(self, exc: BaseException | None) -> None:
        if not self.head.done():
            if exc is None:
                exc = RuntimeError("the ASGI middleware returned without sending a response")
            self.head.set_exception(exc)
            return
        if self.chunks is None:  # complete answer: run() awaits the task itself
            if exc is not None and not isinstance(exc, asyncio.CancelledError):
                logger.error("ASGI middleware raised after its response", exc_info=exc)
            return
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            if self.finished:
                logger.error("ASGI middleware raised after its response", exc_info=exc)
                exc = None
            self.chunks.put_nowait(exc if exc is not None else _DONE)
        else:
            self.chunks.put_nowait(_DONE)

    def abort(self) -> None:
        """Cancel the middleware's task; safe from any thread (``response.close()``)."""
        task = self.task
        if task is None or task.done():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            task.cancel()
        else:
            self.loop.call_soon_threadsafe(task.cancel)

    async def stream(self) -> AsyncIterator[bytes]:
        chunks = self.chunks
        assert chunks is not None
        try:
            while True:
                item = await chunks.get()
                chunks.task_done()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
            if self.task is not None:
                await self.task
        finally:
            self.abort()
            self.release()

    def streaming(self, first: bytes) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for chunk in self.stream():
                yield chunk

        return chunks()

    def single(self, body: bytes) -> Any:
        async def one() -> AsyncIterator[bytes]:
            if body:
                yield body

        return one()

    async def run(self, app: ASGIApp) -> Any:
        self.task = task = self.loop.create_task(self.drive(app))
        try:
            start, body, more = await self.head
            if not more:
                await task
        except BaseException:
            self.abort()
            if not task.done():
                # Client gone (Django cancels us): let the middleware and the
                # view unwind before Django finishes the request, as a server
                # waits for its app.
                await asyncio.wait((task,))
            raise
        response = self.build_response(start, body, more, self.streaming(body) if more else None)
        if more:
            response._resource_closers.insert(0, self.abort)
        else:
            self.release()
        return response


# --------------------------------------------------------------------------- sync


class _Loop:
    """The process's background event loop for WSGI requests (restarted after fork)."""

    lock = threading.Lock()
    loop: asyncio.AbstractEventLoop | None = None
    pid = 0

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        loop = cls.loop
        if loop is not None and cls.pid == os.getpid():
            return loop
        with cls.lock:
            if cls.loop is None or cls.pid != os.getpid():
                new = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=new.run_forever, name="asgi_kit-django-loop", daemon=True
                )
                thread.start()
                cls.loop, cls.pid = new, os.getpid()
            return cls.loop


class SyncExchange(Exchange):
    """Under the WSGI handler: middleware on the background loop, Django in this thread."""

    is_async = False

    def __init__(self, request: Any, scope: Scope, get_response: Callable[[Any], Any]) -> None:
        super().__init__(request, scope, get_response)
        self.loop = _Loop.get()
        self.inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    # Loop-thread side ---------------------------------------------------

    async def call_view(self, request: Any) -> Any:
        return await self.run_sync(self.get_response, request)

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        future: asyncio.Future[Any] = self.loop.create_future()
        ctx = contextvars.copy_context()
        self.inbox.put(("call", func, args, ctx, future))
        result = await future
        _restore_context(ctx)
        return result

    async def read_body(self, size: int) -> bytes:
        return bytes(await self.run_sync(self.request.read, size))

    def deliver_head(self, start: Message, body: bytes, more: bool) -> None:
        self.inbox.put(("head", start, body, more))

    async def push_chunk(self, body: bytes, more: bool) -> None:
        if not body or self.closed:
            return
        ack: asyncio.Future[None] = self.loop.create_future()
        self.inbox.put(("chunk", body, ack))
        await ack

    def end(self, exc: BaseException | None) -> None:
        if exc is not None and self.head_sent and self.finished:
            if not isinstance(exc, asyncio.CancelledError):
                logger.error("ASGI middleware raised after its response", exc_info=exc)
            exc = None
        self.inbox.put(("end", exc))

    # Request-thread side ------------------------------------------------

    def _resolve(
        self, future: asyncio.Future[Any], value: Any, error: BaseException | None
    ) -> None:
        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        self.loop.call_soon_threadsafe(settle)

    def _run_call(self, item: tuple[Any, ...]) -> None:
        _, func, args, ctx, future = item
        try:
            value = ctx.run(func, *args)
        except BaseException as exc:  # handed to the awaiting coroutine
            self._resolve(future, None, exc)
        else:
            self._resolve(future, value, None)

    def abort(self) -> None:
        """Cancel the middleware's task (thread-safe)."""
        self.closed = True

        def cancel() -> None:
            if self.task is not None and not self.task.done():
                self.task.cancel()

        self.loop.call_soon_threadsafe(cancel)

    def _next_item(self) -> tuple[Any, ...]:
        """Serve calls into this thread until the middleware reports something else."""
        while True:
            item = self.inbox.get()
            if item[0] == "call":
                self._run_call(item)
                continue
            return item

    def _wait_end(self) -> None:
        item = self._next_item()
        while item[0] != "end":  # chunks cannot follow a complete body
            item = self._next_item()
        if item[1] is not None:
            raise item[1]

    def stream(self, first: bytes) -> Iterator[bytes]:
        ended = False
        try:
            if first:
                yield first
            while True:
                item = self._next_item()
                if item[0] == "chunk":
                    self._resolve(item[2], None, None)
                    yield item[1]
                    continue
                if item[0] == "end":
                    ended = True
                    if item[1] is not None:
                        raise item[1]
                    return
        finally:
            if not ended:
                self.abort()
            self.release()

    def single(self, body: bytes) -> Any:
        return [body] if body else []

    def run(self, app: ASGIApp) -> Any:
        ctx = contextvars.copy_context()

        def start() -> None:
            # The task copies the current context: the request thread's.
            self.task = self.loop.create_task(self.drive(app))

        self.loop.call_soon_threadsafe(start, context=ctx)
        try:
            item = self._next_item()
            if item[0] == "end":
                error = item[1] or RuntimeError(
                    "the ASGI middleware returned without sending a response"
                )
                raise error
            _, start_message, body, more = item
            if not more:
                self._wait_end()
        except BaseException:
            self.abort()
            raise
        stream = self.stream(body) if more else None
        response = self.build_response(start_message, body, more, stream)
        if more:
            # response.close() must stop the middleware even when the stream
            # was never started (closing an unstarted generator runs nothing).
            response._resource_closers.insert(0, self.abort)
        else:
            self.release()
        return response


async def view_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app every adapter wraps: runs Django's view for the scope's exchange."""
    exchange = scope.get(EXCHANGE_KEY)
    if not isinstance(exchange, Exchange):
        raise RuntimeError(
            "asgi_kit Django adapter: the ASGI middleware called its app with a scope "
            "that is not a copy of the one it received"
        )
    await exchange.inner_app(scope, receive, send)
