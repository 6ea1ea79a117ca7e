"""RequestLimitsMiddleware: bounds on what one request may cost, and load shedding.

Three independent limits, each off unless configured:

* ``max_body_size``: a declared ``Content-Length`` over the limit is answered
  ``413`` before the app runs; a body without one (chunked, HTTP/2 streams)
  is counted as the app reads it, and the moment it crosses the limit the
  client gets ``413`` and the app's ``receive`` returns ``http.disconnect``
  (never a silently truncated body that looks complete).
* ``timeout``: the app runs in the request's own task under a deadline
  that cancels it, as ``asyncio.timeout`` does; when it has not started its response in time it is
  cancelled (its ``finally`` blocks run, nothing is left running) and the
  client gets ``504``.  A response that has started is never cut, unless
  ``idle_timeout`` bounds the pause between two body chunks.
* ``max_concurrency``: at most N requests run at once in this process; up to
  ``max_queue`` more wait in FIFO order, each at most ``queue_timeout``
  seconds; the rest are shed with ``503`` and ``Retry-After``.

Every refusal is a small JSON answer, logged once as ``asgi_kit.limits``, and
the app never sees the refused request.  In-flight, queued and shed counts
are exported to Prometheus at scrape time (nothing is paid per request).
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import structlog
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._http import APPLICATION_JSON, PathMatcher, asgi3, refuse_websocket
from .types import AnyASGIApp, Headers, Message, Receive, Scope, Send

__all__ = ["RequestLimitsMiddleware", "parse_content_length"]

_log = structlog.get_logger("asgi_kit.limits")
_logger = logging.getLogger("asgi_kit.limits")

#: ``parse_content_length`` result for a malformed or self-contradicting header.
MALFORMED = -1
# More digits than this is larger than any limit anyone configures (and int()
# refuses strings past 4300 digits): read it as "huge" without parsing.
_MAX_DIGITS = 18
_HUGE = 10**18

_DISCONNECT: Message = {"type": "http.disconnect"}
# HTTP versions whose request has no body without Content-Length or Transfer-Encoding.
_FRAMED = frozenset(("1.0", "1.1"))

_BODY_400 = b'{"detail":"Malformed Content-Length header"}'
_BODY_413 = b'{"detail":"Request body too large"}'
#: After a mid-stream 413, at most this much more body is read and dropped
#: (within _LINGER_SECONDS) so clients that send before they read see it.
_LINGER_BYTES = 1024 * 1024
_LINGER_SECONDS = 1.0
_BODY_503 = b'{"detail":"Server busy, retry later"}'
_BODY_504 = b'{"detail":"The application did not answer in time"}'


def parse_content_length(values: Iterable[bytes]) -> int | None:
    """The body length declared by ``Content-Length`` header values.

    Returns None when there is no value, :data:`MALFORMED` (``-1``) when a
    value is not ``1*DIGIT`` or values disagree.  Repeated headers or a
    comma list of one identical length are accepted, as RFC 9110 §8.6
    allows.  Absurdly long digit strings count as a huge length rather than
    being parsed.  Never raises on client input.
    """
    length: int | None = None
    for value in values:
        for part in value.split(b",") if b"," in value else (value,):
            digits = part.strip(b" \t")
            if not digits or not digits.isdigit():  # bytes.isdigit(): ASCII digits only
                return MALFORMED
            n = _HUGE if len(digits) > _MAX_DIGITS else int(digits)
            if length is not None and n != length:
                return MALFORMED
            length = n
    return length


def _number(option: str, value: object, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{option} must be a number of seconds or None, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{option} must be a positive number of seconds, got {value!r}")
    return float(value)


def _count(option: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{option} must be >= {low}, got {value!r}")
    return value


def _int(option: str, value: object, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be an int or None, got {value!r}")
    return _count(option, value, low)


def _refusal_headers(body: bytes, retry_after: int | None = None) -> Headers:
    headers: Headers = [
        (b"content-type", APPLICATION_JSON),
        (b"content-length", b"%d" % len(body)),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", b"%d" % retry_after))
    return headers


class _Refusal:
    """One precomputed refusal: status, body and headers, sent as a fresh message."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, body: bytes, headers: Headers) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = headers

    async def send(self, send: Send) -> None:
        # A new list each time: the server (or an outer middleware) may edit it.
        start = {"type": "http.response.start", "status": self.status, "headers": [*self.headers]}
        await send(start)
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class _Metrics(Collector):
    """Scrape-time gauges and counters over every live middleware of one registry.

    Reading the middleware's own counters when Prometheus scrapes costs
    nothing per request (a Gauge's ``inc``/``dec`` takes a lock each time),
    and one collector per registry means several middleware instances, or
    an app rebuilt in tests, never collide on registration.
    """

    def __init__(self) -> None:
        self.members: weakref.WeakSet[RequestLimitsMiddleware] = weakref.WeakSet()

    def describe(self) -> Iterator[Metric]:
        # Lets the registry check the names at registration, whatever its auto_describe.
        yield GaugeMetricFamily("asgi_kit_requests_in_flight", "")
        yield GaugeMetricFamily("asgi_kit_requests_queued", "")
        yield CounterMetricFamily("asgi_kit_requests_shed", "", labels=("reason",))

    def collect(self) -> Iterator[Metric]:
        members = list(self.members)
        yield GaugeMetricFamily(
            "asgi_kit_requests_in_flight",
            "Requests (and counted WebSocket connections) RequestLimitsMiddleware lets run now.",
            value=sum(m._active for m in members),
        )
        yield GaugeMetricFamily(
            "asgi_kit_requests_queued",
            "Requests waiting for a RequestLimitsMiddleware concurrency slot.",
            value=sum(len(m._queue) for m in members),
        )
        shed = CounterMetricFamily(
            "asgi_kit_requests_shed",
            "Requests refused with 503 by RequestLimitsMiddleware, by reason.",
            labels=("reason",),
        )
        for reason in ("queue_full", "queue_timeout"):
            shed.add_metric((reason,), sum(m._shed[reason] for m in members))
        yield shed


_COLLECTORS: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()


def _collector_for(registry: CollectorRegistry) -> _Metrics:
    collector = _COLLECTORS.get(registry)
    if collector is None:
        collector = _Metrics()
        try:
            registry.register(collector)
        except ValueError as exc:
            raise ValueError(
                f"registry: it already holds a metric named like RequestLimitsMiddleware's "
                f"asgi_kit_requests_* series ({exc}); pass another registry or registry=None"
            ) from None
        _COLLECTORS[registry] = collector
    return collector


class _Deadlines:
    """Deadlines of one duration on one event loop, served by a single loop timer.

    Every request gets the same duration, so arrival order is deadline order:
    an insertion-ordered dict is the queue, a request leaves it in O(1) when
    its response starts, and one timer at the oldest deadline serves them
    all (a timer handle per request would cost more than the rest of the
    middleware put together).
    """

    __slots__ = ("duration", "entries", "handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, duration: float) -> None:
        self.loop = loop
        self.duration = duration
        self.entries: dict[_Exchange, float] = {}
        self.handle: asyncio.TimerHandle | None = None

    def add(self, exchange: _Exchange) -> None:
        when = self.loop.time() + self.duration
        self.entries[exchange] = when
        if self.handle is None:
            self.handle = self.loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        self.handle = None
        now = self.loop.time()
        expired: list[_Exchange] = []
        for exchange, when in self.entries.items():
            if when > now:
                self.handle = self.loop.call_at(when, self._sweep)
                break
            expired.append(exchange)
        for exchange in expired:
            del self.entries[exchange]
            exchange.expire()


class _Exchange:
    """Per-request state when a body limit or a timeout needs to watch the messages."""

    __slots__ = (
        "_receive",
        "_send",
        "answered",
        "fired",
        "idle",
        "limit",
        "over",
        "scope",
        "started",
        "task",
        "timed",
        "total",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send, limit: int | None) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.limit = limit
        self.total = 0
        self.started = False
        self.answered = False
        self.over = False
        self.fired = False
        #: The deadlines this request is in now (time to first byte, then idle).
        self.timed: _Deadlines | None = None
        self.idle: _Deadlines | None = None
        self.task: asyncio.Task[Any] | None = None

    async def receive(self) -> Message:
        if self.over:
            return _DISCONNECT
        message = await self._receive()
        limit = self.limit
        if limit is not None and message["type"] == "http.request":
            self.total += len(message.get("body", b""))
            if self.total > limit:
                # Never hand the app a body cut short that looks complete: it
                # sees the client go away, and no more of the body is read.
                self.over = True
                if not self.started:
                    await self.answer(_REFUSE_413_STREAMED)
                    _refused(_REFUSE_413_STREAMED, _fields(self.scope), limit=limit)
                else:
                    _refused_late(_fields(self.scope), limit)
                return _DISCONNECT
        return message

    async def linger(self) -> None:
        """After a mid-stream 413, read and drop a bounded rest of the body.

        Most HTTP clients send their whole body before they read the answer;
        a server that closes the connection with unread body bytes makes the
        kernel reset it, and the client loses the 413 it was sent.  Reading a
        little more (nothing of it reaches the app) lets such a client see
        the answer, as nginx's lingering close does; a larger rest is cut.
        """
        if not (self.over and self.answered):
            return
        budget = _LINGER_BYTES
        deadline = asyncio.get_running_loop().time() + _LINGER_SECONDS
        while budget > 0:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            try:
                message = await asyncio.wait_for(self._receive(), left)
            except (asyncio.TimeoutError, Exception):
                return
            if message.get("type") != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # our refusal went out; whatever the app sends now has no client
        if not self.started:
            if message["type"] == "http.response.start":
                self.started = True
                timed = self.timed
                if timed is not None:
                    timed.entries.pop(self, None)
                    self.timed = None
                idle = self.idle
                if idle is not None:
                    idle.add(self)
                    self.timed = idle
        elif self.timed is not None and self.timed.entries.pop(self, None) is not None:
            self.timed.add(self)  # idle deadline: back of the queue, with a fresh deadline
        await self._send(message)

    def disarm(self) -> None:
        timed = self.timed
        if timed is not None:
            timed.entries.pop(self, None)
            self.timed = None

    def expire(self) -> None:
        self.fired = True
        self.timed = None
        assert self.task is not None
        self.task.cancel()

    def settle(self) -> bool:
        """Stop the clock; True when our cancellation was the only one the task got."""
        self.disarm()
        self.idle = None
        if not self.fired:
            return False
        uncancel = getattr(self.task, "uncancel", None)  # Python 3.11+
        # Another cancel on top of ours (server shutdown) must still propagate.
        return uncancel is None or uncancel() == 0

    async def answer(self, refusal: _Refusal) -> None:
        self.started = True
        self.answered = True
        self.disarm()
        self.idle = None
        await refusal.send(self._send)


def _fields(scope: Scope) -> dict[str, Any]:
    return {"method": scope.get("method"), "path": scope.get("path")}


def _emit(level: str, event: str, fields: dict[str, Any]) -> None:
    if structlog.is_configured():
        # The application's structlog pipeline (which may feed stdlib logging).
        getattr(_log, level)(event, **fields)
    else:
        # Unconfigured structlog only prints to stdout, out of reach of logging
        # handlers: use stdlib logging, fields in the message and on the record.
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        getattr(_logger, level)("%s: %s", event, text, extra=fields)


def _refused(refusal: _Refusal, fields: dict[str, Any], **extra: Any) -> None:
    _emit(
        "warning",
        "request refused",
        {"status": refusal.status, "reason": refusal.reason, **fields, **extra},
    )


def _refused_late(fields: dict[str, Any], limit: int) -> None:
    # The response had started: too late for a 413, the request is cut instead.
    _emit(
        "warning",
        "request body cut",
        {"reason": "body_too_large", **fields, "limit": limit},
    )


_REFUSE_400 = _Refusal(400, "malformed_content_length", _BODY_400, _refusal_headers(_BODY_400))
_REFUSE_413 = _Refusal(
    413, "body_too_large", _BODY_413, [*_refusal_headers(_BODY_413), (b"connection", b"close")]
)
# Mid-stream: no ``Connection: close``, which makes servers close the socket
# as soon as the answer is out, before the bounded linger has read the rest
# the client is still sending (a reset would lose the answer).
_REFUSE_413_STREAMED = _Refusal(413, "body_too_large", _BODY_413, _refusal_headers(_BODY_413))
_REFUSE_504 = _Refusal(504, "timeout", _BODY_504, _refusal_headers(_BODY_504))


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


class RequestLimitsMiddleware:
    """Bound the body size, the time to first byte and the concurrency of requests.

    Args:
        app: The ASGI application to wrap (ASGI 2 apps are adapted).
        max_body_size: Largest request body in bytes, or None for no limit.
            A larger ``Content-Length`` is answered ``413`` before the app
            runs; a body streamed without one is cut with ``413`` once it
            crosses the limit (see the module docs).
        timeout: Seconds the app has to *start* its response, or None.  Past
            it the app is cancelled and the client gets ``504``.
        max_concurrency: Requests allowed to run at once in this process
            (per middleware instance), or None for no limit.
        max_queue: Requests that may wait for a slot when all are taken;
            they are let in first come, first served.  Beyond it, ``503``.
        queue_timeout: Longest wait in the queue in seconds, or None to wait
            until a slot frees up.  A request that waited that long gets ``503``.
        exclude_paths: Paths (exact or ``/prefix/*`` globs) no limit applies to.
        max_body_size_paths: Per-path body limits overriding ``max_body_size``,
            ``{pattern: bytes or None}``; the first pattern that matches wins
            (``{"/upload/*": 100 * 2**20}``).
        idle_timeout: Once a response has started, the longest pause between
            two body chunks before the app is cancelled and the response is
            cut (the server closes the connection), or None.
        retry_after: Seconds sent in ``Retry-After`` with a ``503``.
        limit_websockets: Count open WebSocket connections against
            ``max_concurrency`` (a connection holds its slot until it closes);
            False lets them bypass the limit.
        registry: Prometheus registry receiving the ``asgi_kit_requests_*``
            series, or None for no metrics.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option is out of range.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        max_body_size: int | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        max_queue: int = 0,
        queue_timeout: float | None = None,
        exclude_paths: Iterable[str] = (),
        *,
        max_body_size_paths: Mapping[str, int | None] | None = None,
        idle_timeout: float | None = None,
        retry_after: int = 1,
        limit_websockets: bool = True,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {app!r}")
        self.app = asgi3(app)
        self.max_body_size = _int("max_body_size", max_body_size, 0)
        self.timeout = _number("timeout", timeout)
        self.max_concurrency = _int("max_concurrency", max_concurrency, 1)
        self.max_queue = _count("max_queue", max_queue, 0)
        self.queue_timeout = _number("queue_timeout", queue_timeout, allow_zero=True)
        self.idle_timeout = _number("idle_timeout", idle_timeout)
        self.retry_after = _count("retry_after", retry_after, 0)
        if self.max_concurrency is None and (self.max_queue or self.queue_timeout is not None):
            raise ValueError("max_queue and queue_timeout need max_concurrency to be set")
        if not isinstance(limit_websockets, bool):
            raise TypeError(f"limit_websockets must be a bool, got {limit_websockets!r}")
        self.limit_websockets = limit_websockets
        self._exclude = PathMatcher(exclude_paths, "exclude_paths")
        self.exclude_paths = self._exclude.patterns
        self._has_exclude = bool(self._exclude)

        if max_body_size_paths is None:
            max_body_size_paths = {}
        if not isinstance(max_body_size_paths, Mapping):
            raise TypeError(
                f"max_body_size_paths must be a mapping of path pattern to size, "
                f"got {max_body_size_paths!r}"
            )
        self.max_body_size_paths = dict(max_body_size_paths)
        self._path_limits = tuple(
            (
                PathMatcher([pattern], "max_body_size_paths"),
                _int(f"max_body_size_paths[{pattern!r}]", size, 0),
            )
            for pattern, size in self.max_body_size_paths.items()
        )
        self._limits_body = self.max_body_size is not None or bool(self._path_limits)
        self._watch = self.timeout is not None or self.idle_timeout is not None

        self._timers: (
            tuple[asyncio.AbstractEventLoop, _Deadlines | None, _Deadlines | None] | None
        ) = None
        self._active = 0
        self._queue: deque[asyncio.Future[bool]] = deque()
        self._shed = {"queue_full": 0, "queue_timeout": 0}
        self._refuse_503 = _Refusal(
            503, "queue_full", _BODY_503, _refusal_headers(_BODY_503, self.retry_after)
        )
        self._ws_503_headers: Headers = [(b"retry-after", b"%d" % self.retry_after)]

        if registry is not None:
            if not isinstance(registry, CollectorRegistry):
                raise TypeError(
                    f"registry must be a prometheus_client CollectorRegistry or None, "
                    f"got {registry!r}"
                )
            _collector_for(registry).members.add(self)

    # ----------------------------------------------------------------- limits

    def body_limit(self, path: str) -> int | None:
        """The body size limit that applies to ``path`` (None: unlimited)."""
        for matches, size in self._path_limits:
            if matches(path):
                return size
        return self.max_body_size

    async def _acquire(self) -> str | None:
        """Wait for a concurrency slot; the reason for refusing, or None once it is held."""
        if len(self._queue) >= self.max_queue:
            return "queue_full"
        loop = asyncio.get_running_loop()
        # Resolved True by _release (the slot is handed over) or False at the deadline.
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.append(future)
        handle = None
        if self.queue_timeout is not None:
            handle = loop.call_later(self.queue_timeout, _expire, future)
        try:
            granted = await future
        except BaseException:
            # Cancelled while waiting (the server shuts down): give back what we hold.
            if future.done() and not future.cancelled() and future.result():
                self._release()
            elif future in self._queue:
                self._queue.remove(future)
            raise
        finally:
            if handle is not None:
                handle.cancel()
        if granted:
            return None
        self._queue.remove(future)
        return "queue_timeout"

    def _release(self) -> None:
        queue = self._queue
        while queue:
            future = queue.popleft()
            if not future.done():
                future.set_result(True)  # the slot passes to the longest waiter
                return
        self._active -= 1

    async def _queue_or_shed(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Wait in the queue for a slot (True), or answer 503 (False)."""
        reason = await self._acquire()
        if reason is None:
            return True
        self._shed[reason] += 1
        refusal = self._refuse_503
        _emit(
            "warning",
            "request refused",
            {
                "status": 503,
                "reason": reason,
                **_fields(scope),
                "max_concurrency": self.max_concurrency,
            },
        )
        if scope["type"] == "websocket":
            await refuse_websocket(
                scope, receive, send, 503, b"Server busy", self._ws_503_headers, 1013
            )
        else:
            await refusal.send(send)
        return False

    # ----------------------------------------------------------------- calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self._has_exclude and self._exclude(scope["path"]):
                await self.app(scope, receive, send)
                return
            limit: int | None = None
            if self._limits_body:
                limit = self.body_limit(scope["path"]) if self._path_limits else self.max_body_size
                if limit is not None:
                    declared: bytes | None = None
                    more: list[bytes] | None = None  # further Content-Length values, rare
                    chunked = False
                    for key, value in scope["headers"]:
                        n = len(key)
                        if n == 14:
                            if key == b"content-length" or key.lower() == b"content-length":
                                if declared is None:
                                    declared = value
                                elif more is None:
                                    more = [declared, value]
                                else:
                                    more.append(value)
                        elif n == 17 and (
                            key == b"transfer-encoding" or key.lower() == b"transfer-encoding"
                        ):
                            chunked = True
                    if declared is not None:
                        length: int | None
                        if more is None and declared.isdigit() and len(declared) <= _MAX_DIGITS:
                            length = int(declared)  # the usual case, one plain value
                        else:
                            length = parse_content_length(more or (declared,))
                        if length == MALFORMED:
                            _refused(_REFUSE_400, _fields(scope))
                            await _REFUSE_400.send(send)
                            return
                        if length is not None and length > limit:
                            _refused(
                                _REFUSE_413, _fields(scope), limit=limit, content_length=length
                            )
                            await _REFUSE_413.send(send)
                            return
                    if chunked:
                        pass  # the body's size is unknown until it has been read: count it
                    elif declared is not None or scope.get("http_version") in _FRAMED:
                        # The server frames the body by Content-Length and HTTP/1.x
                        # has no body without it or Transfer-Encoding: no counting.
                        limit = None
            if self.max_concurrency is None:
                await self._run(scope, receive, send, limit)
                return
            if self._active < self.max_concurrency:
                self._active += 1  # the usual case: a free slot, no await
            elif not await self._queue_or_shed(scope, receive, send):
                return
            try:
                await self._run(scope, receive, send, limit)
            finally:
                self._release()
        elif kind == "websocket" and self.max_concurrency is not None and self.limit_websockets:
            if self._has_exclude and self._exclude(scope["path"]):
                await self.app(scope, receive, send)
                return
            if self._active < self.max_concurrency:
                self._active += 1
            elif not await self._queue_or_shed(scope, receive, send):
                return
            try:
                await self.app(scope, receive, send)  # the connection holds its slot while open
            finally:
                self._release()
        else:
            await self.app(scope, receive, send)

    def _new_timers(
        self, loop: asyncio.AbstractEventLoop
    ) -> tuple[asyncio.AbstractEventLoop, _Deadlines | None, _Deadlines | None]:
        first = None if self.timeout is None else _Deadlines(loop, self.timeout)
        idle = None if self.idle_timeout is None else _Deadlines(loop, self.idle_timeout)
        # One event loop per process in practice; another one (tests, a
        # background loop) simply gets its own queues.
        self._timers = (loop, first, idle)
        return self._timers

    async def _run(self, scope: Scope, receive: Receive, send: Send, limit: int | None) -> None:
        if limit is None and not self._watch:
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, receive, send, limit)
        if not self._watch:
            try:
                await self.app(scope, exchange.receive, exchange.send)
            except Exception:
                if not exchange.over:
                    raise
                # The app failed on the disconnect we handed it (Starlette's
                # ClientDisconnect, Django's RequestAborted): already answered and logged.
            await exchange.linger()
            return
        # The app runs in this very task: cancelling it runs its finally blocks
        # before we answer, and no task is left behind.
        loop = asyncio.get_running_loop()
        timers = self._timers
        if timers is None or timers[0] is not loop:
            timers = self._new_timers(loop)
        first = timers[1]
        exchange.task = asyncio.current_task()
        exchange.idle = timers[2]
        if first is not None:
            exchange.timed = first
            when = loop.time() + first.duration
            first.entries[exchange] = when
            if first.handle is None:
                first.handle = loop.call_at(when, first._sweep)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except asyncio.CancelledError:
            if not exchange.settle():
                raise  # not (only) our deadline: the cancellation goes on
        except BaseException as exc:
            exchange.settle()
            if exchange.over and isinstance(exc, Exception):
                # The app failed on the disconnect we handed it: answered and logged.
                await exchange.linger()
                return
            raise
        else:
            if not exchange.settle():
                await exchange.linger()
                return
        if not exchange.started:
            # Also when the app swallowed the cancellation and returned.
            _refused(_REFUSE_504, _fields(scope), timeout=self.timeout)
            await exchange.answer(_REFUSE_504)
        elif not exchange.answered:
            # Idle between chunks: the response is cut, the server closes the connection.
            _emit(
                "warning",
                "response cut",
                {"reason": "idle_timeout", **_fields(scope), "idle_timeout": self.idle_timeout},
            )
