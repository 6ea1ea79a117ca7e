"""Helpers for testing applications that use asgi_kit, in process, with no server.

Drive an ASGI application the way a server would and see exactly what it
sends, then check what the middleware recorded::

    from asgi_kit import testing

    async def test_home() -> None:
        response = await testing.request(app, "GET", "/", headers={"Origin": "https://a.test"})
        assert response.status == 200
        assert response.header("access-control-allow-origin") == "https://a.test"

* :func:`request` runs one HTTP request: the request body may be streamed in
  chunks, and every message the app sends is kept (:class:`Response` has the
  start message, each body chunk and the joined body), so streaming and
  flushing can be checked, which clients that buffer the body hide.
* :func:`websocket` connects to a WebSocket endpoint (:class:`WebSocket`).
* :func:`lifespan` runs the app's startup and shutdown around a block.
* :func:`capture_spans` gives an OpenTelemetry SDK tracer provider whose
  finished spans are kept in memory (needs ``opentelemetry-sdk``, imported
  only when called).
* :func:`metric_samples` and :func:`metric_value` read samples from a
  prometheus-client registry, or from exposition text a ``/metrics``
  endpoint served, through prometheus-client's own parser.
* :func:`capture_events` captures structlog events (``structlog.testing``).

asgi_kit's own test suite is built on this module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
)
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._plumbing.headers import header_value, header_values
from ._plumbing.options import check_app
from .types import AnyASGIApp, Headers, Message, Scope

if TYPE_CHECKING:
    from asgiref.testing import ApplicationCommunicator
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client import CollectorRegistry
    from prometheus_client.samples import Sample

__all__ = [
    "HeaderInput",
    "Response",
    "SpanCapture",
    "WebSocket",
    "capture_events",
    "capture_spans",
    "encode_headers",
    "http_scope",
    "lifespan",
    "metric_samples",
    "metric_value",
    "request",
    "websocket",
    "websocket_scope",
]

#: Request headers as ``(name, value)`` pairs (str or bytes) or a dict.
HeaderInput = Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str]
#: A request body: bytes, or chunks (sync or async) sent with ``more_body``.
BodyInput = bytes | Iterable[bytes] | AsyncIterable[bytes]


def encode_headers(headers: HeaderInput | None) -> Headers:
    """An ASGI header list from str/bytes pairs or a dict (names lower-cased, as servers do)."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    out: Headers = []
    for k, v in items:
        kb = k.encode("latin-1") if isinstance(k, str) else bytes(k)
        vb = v.encode("latin-1") if isinstance(v, str) else bytes(v)
        out.append((kb.lower(), vb))
    return out


def http_scope(
    method: str = "GET",
    path: str = "/",
    headers: HeaderInput | None = None,
    query_string: bytes = b"",
    scheme: str = "http",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    server: tuple[str, int] | None = ("testserver", 80),
    http_version: str = "1.1",
    **extra: Any,
) -> Scope:
    """An ``http`` scope as a server builds one; ``extra`` keys are added as given."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": query_string,
        "root_path": "",
        "headers": encode_headers(headers),
        "client": client,
        "server": server,
        "extensions": {},
        "state": {},
    }
    scope.update(extra)
    return scope


def websocket_scope(
    path: str = "/ws",
    headers: HeaderInput | None = None,
    *,
    subprotocols: Iterable[str] = (),
    http_response_extension: bool = False,
    **extra: Any,
) -> Scope:
    """A ``websocket`` scope; ``http_response_extension`` advertises ``websocket.http.response``."""
    extra.setdefault("scheme", "ws")
    scope = http_scope("GET", path, headers, **extra)
    scope["type"] = "websocket"
    del scope["method"]
    scope["subprotocols"] = list(subprotocols)
    if http_response_extension:
        scope["extensions"] = {"websocket.http.response": {}}
    return scope


@dataclass
class Response:
    """Everything an app sent for one HTTP request, in order."""

    #: Every message passed to ``send``.
    messages: list[Message] = field(default_factory=list)

    @property
    def start(self) -> Message:
        """The ``http.response.start`` message (``AssertionError`` when none was sent)."""
        for m in self.messages:
            if m["type"] == "http.response.start":
                return m
        raise AssertionError(f"no http.response.start in {self.messages!r}")

    @property
    def status(self) -> int:
        """The response status."""
        return int(self.start["status"])

    @property
    def headers(self) -> Headers:
        """The response headers as sent (names in the app's case)."""
        return [(bytes(k), bytes(v)) for k, v in self.start.get("headers", [])]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        value = header_value(self.headers, name.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in order."""
        found = header_values(self.headers, name.lower().encode("latin-1"))
        return [v.decode("latin-1") for v in found]

    @property
    def chunks(self) -> list[bytes]:
        """Each ``http.response.body`` message's body, empty ones included."""
        return [
            bytes(m.get("body", b"")) for m in self.messages if m["type"] == "http.response.body"
        ]

    @property
    def body(self) -> bytes:
        """The whole body."""
        return b"".join(self.chunks)

    @property
    def text(self) -> str:
        """The whole body decoded as UTF-8."""
        return self.body.decode()

    @property
    def complete(self) -> bool:
        """Whether the app sent its last body chunk (``more_body`` false)."""
        return any(
            m["type"] == "http.response.body" and not m.get("more_body", False)
            for m in self.messages
        )


async def _chunks(body: BodyInput) -> AsyncIterator[bytes]:
    if isinstance(body, (bytes, bytearray, memoryview)):
        yield bytes(body)
    elif isinstance(body, AsyncIterable):
        async for chunk in body:
            yield chunk
    else:
        for chunk in body:
            yield chunk


async def request(
    app: AnyASGIApp,
    method: str = "GET",
    path: str = "/",
    headers: HeaderInput | None = None,
    body: BodyInput = b"",
    *,
    scope: Scope | None = None,
    on_send: Callable[[Message], Any] | None = None,
    disconnect_after_body: bool = True,
    **scope_kwargs: Any,
) -> Response:
    """Run one HTTP request through ``app`` in process and capture what it sends.

    ``body`` may be bytes or chunks (a list, a generator or an async
    iterator), delivered one ``http.request`` message each with
    ``more_body=True`` until the last; the app pulls them at its own pace.
    Once the body is read the app sees ``http.disconnect`` after the
    response completed, as servers do, or never when
    ``disconnect_after_body`` is False.  ``on_send`` (plain or async) sees
    each message as it is sent, before the app continues, so a test can
    check ordering or time a flush.  ``scope_kwargs`` go to
    :func:`http_scope`; pass ``scope`` to use one of your own.
    """
    asgi_app = check_app(app)
    if scope is None:
        scope = http_scope(method, path, headers, **scope_kwargs)
    chunks = _chunks(body).__aiter__()
    pending: bytes | None = None
    finished_body = False
    captured = Response()
    done = asyncio.Event()

    async def receive() -> Message:
        nonlocal pending, finished_body
        if not finished_body:
            # Look one chunk ahead to know whether this one is the last.
            if pending is None:
                pending = await anext(chunks, b"")
            current = pending
            following = await anext(chunks, None)
            pending = following
            finished_body = following is None
            return {"type": "http.request", "body": current, "more_body": not finished_body}
        if disconnect_after_body:
            await done.wait()
        else:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        captured.messages.append(message)
        if on_send is not None:
            result = on_send(message)
            if isinstance(result, Awaitable):
                await result
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await asgi_app(scope, receive, send)
    return captured


class WebSocket:
    """One in-process WebSocket connection (see :func:`websocket`).

    Messages the app sends are read with :meth:`receive` (any message) or
    :meth:`receive_text` / :meth:`receive_bytes`; :attr:`communicator` is
    the underlying :class:`asgiref.testing.ApplicationCommunicator`.
    """

    def __init__(self, communicator: ApplicationCommunicator, timeout: float) -> None:
        self.communicator = communicator
        self.timeout = timeout
        #: What the app answered the handshake with (``websocket.accept``,
        #: ``websocket.close`` or ``websocket.http.response.start``).
        self.handshake: Message = {}

    @property
    def accepted(self) -> bool:
        """Whether the app accepted the handshake."""
        return self.handshake.get("type") == "websocket.accept"

    async def connect(self) -> Message:
        """Send ``websocket.connect``; return the app's answer (also in :attr:`handshake`)."""
        await self.communicator.send_input({"type": "websocket.connect"})  # type: ignore[no-untyped-call]
        self.handshake = await self.receive()
        return self.handshake

    async def send_text(self, text: str) -> None:
        """Send a text frame to the app."""
        await self.communicator.send_input({"type": "websocket.receive", "text": text})  # type: ignore[no-untyped-call]

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame to the app."""
        await self.communicator.send_input({"type": "websocket.receive", "bytes": data})  # type: ignore[no-untyped-call]

    async def receive(self, timeout: float | None = None) -> Message:
        """The next message the app sends (``asyncio.TimeoutError`` after ``timeout``)."""
        message: Message = await self.communicator.receive_output(timeout or self.timeout)  # type: ignore[no-untyped-call]
        return message

    async def receive_text(self) -> str:
        """The next frame's text (``AssertionError`` on any other message)."""
        message = await self.receive()
        assert message["type"] == "websocket.send" and message.get("text") is not None, message
        return str(message["text"])

    async def receive_bytes(self) -> bytes:
        """The next frame's bytes (``AssertionError`` on any other message)."""
        message = await self.receive()
        assert message["type"] == "websocket.send" and message.get("bytes") is not None, message
        return bytes(message["bytes"])

    async def close(self, code: int = 1000) -> None:
        """Tell the app the client went away (``websocket.disconnect``)."""
        await self.communicator.send_input({"type": "websocket.disconnect", "code": code})  # type: ignore[no-untyped-call]


@contextlib.asynccontextmanager
async def websocket(
    app: AnyASGIApp,
    path: str = "/ws",
    headers: HeaderInput | None = None,
    *,
    scope: Scope | None = None,
    connect: bool = True,
    timeout: float = 2.0,
    **scope_kwargs: Any,
) -> AsyncIterator[WebSocket]:
    """A WebSocket connection to ``app``, connected unless ``connect=False``.

    Check :attr:`WebSocket.accepted` (or :attr:`WebSocket.handshake`: a
    middleware may close the handshake or answer it with an HTTP response).
    The app is cancelled when the block ends.  ``scope_kwargs`` go to
    :func:`websocket_scope`.
    """
    from asgiref.testing import ApplicationCommunicator

    if scope is None:
        scope = websocket_scope(path, headers, **scope_kwargs)
    communicator = ApplicationCommunicator(check_app(app), scope)  # type: ignore[no-untyped-call]
    connection = WebSocket(communicator, timeout)
    try:
        if connect:
            await connection.connect()
        yield connection
    finally:
        if not communicator.future.done():
            communicator.future.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await communicator.future


@contextlib.asynccontextmanager
async def lifespan(app: AnyASGIApp, timeout: float = 10.0) -> AsyncIterator[dict[str, Any]]:
    """Run ``app``'s lifespan startup, the block, then its shutdown.

    Yields the lifespan ``state`` dict the app may fill at startup (what
    servers copy into each request's ``scope["state"]``).  Raises
    :class:`RuntimeError` when the app reports ``startup.failed`` or
    ``shutdown.failed``, or returns without answering (no lifespan support).
    """
    asgi_app = check_app(app)
    state: dict[str, Any] = {}
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        await outbox.put(message)

    task = asyncio.ensure_future(asgi_app(scope, receive, send))

    async def answer(step: str) -> None:
        await inbox.put({"type": f"lifespan.{step}"})
        getter = asyncio.ensure_future(outbox.get())
        finished, _ = await asyncio.wait(
            {getter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter not in finished:
            getter.cancel()
            if task in finished:
                error = task.exception()
                raise RuntimeError(f"the app returned during lifespan {step}") from error
            raise RuntimeError(f"no answer to lifespan.{step} within {timeout} s")
        message = getter.result()
        if message["type"] == f"lifespan.{step}.failed":
            raise RuntimeError(f"lifespan {step} failed: {message.get('message', '')}")
        if message["type"] != f"lifespan.{step}.complete":
            raise RuntimeError(f"unexpected answer to lifespan.{step}: {message!r}")

    try:
        await answer("startup")
        yield state
        await answer("shutdown")
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


# --------------------------------------------------------------------------- traces


class SpanCapture:
    """An OpenTelemetry SDK tracer provider whose finished spans stay in memory.

    Pass :attr:`provider` to ``TracingMiddleware(tracer_provider=...)`` (or
    set it as the global provider); read :attr:`spans` after the request.
    """

    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, oldest first."""
        return list(self.exporter.get_finished_spans())

    def only(self) -> ReadableSpan:
        """The single finished span (``AssertionError`` when there are more or none)."""
        spans = self.spans
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def clear(self) -> None:
        """Forget the spans finished so far."""
        self.exporter.clear()


def capture_spans(**provider_options: Any) -> SpanCapture:
    """A :class:`SpanCapture` on a new SDK ``TracerProvider(**provider_options)``.

    Needs ``opentelemetry-sdk`` (asgi_kit itself depends on the API only);
    it is imported here, so applications that never call this need not
    install it.
    """
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError as exc:
        raise ImportError(
            "capture_spans needs the OpenTelemetry SDK: pip install opentelemetry-sdk"
        ) from exc
    provider_options.setdefault("shutdown_on_exit", False)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(**provider_options)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return SpanCapture(provider, exporter)


# --------------------------------------------------------------------------- metrics


def metric_samples(
    source: CollectorRegistry | str | bytes, name: str | None = None, **labels: str
) -> list[Sample]:
    """Samples from a registry or from exposition text, optionally filtered.

    ``source`` is a prometheus-client ``CollectorRegistry`` (read directly)
    or the text a ``/metrics`` endpoint served (parsed with
    prometheus-client's parser, Prometheus text format or OpenMetrics).
    ``name`` keeps samples of that exact sample name
    (``http_server_request_duration_seconds_count``); ``labels`` keep
    samples carrying those label values.
    """
    if isinstance(source, (str, bytes)):
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        if "# EOF" in text:
            from prometheus_client.openmetrics.parser import (
                text_string_to_metric_families as parse,
            )
        else:
            from prometheus_client.parser import text_string_to_metric_families as parse
        families = list(parse(text))  # type: ignore[no-untyped-call]
    else:
        families = list(source.collect())
    return [
        sample
        for family in families
        for sample in family.samples
        if (name is None or sample.name == name)
        and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def metric_value(source: CollectorRegistry | str | bytes, name: str, **labels: str) -> float | None:
    """The value of the one sample ``name`` with ``labels``; None when there is none.

    ``AssertionError`` when several samples match (give more labels).
    """
    found = metric_samples(source, name, **labels)
    assert len(found) <= 1, f"{len(found)} samples match {name} {labels}: {found}"
    return float(found[0].value) if found else None


# --------------------------------------------------------------------------- logs


@contextlib.contextmanager
def capture_events() -> Iterator[list[MutableMapping[str, Any]]]:
    """Capture structlog events logged in the block, as dicts, in order.

    A thin wrapper of :func:`structlog.testing.capture_logs`: each event has
    ``event``, ``log_level`` and its fields; the configured processors do
    not run.  Loggers cached before the block (``cache_logger_on_first_use``)
    are not captured.
    """
    from structlog.testing import capture_logs

    with capture_logs() as events:
        yield events
