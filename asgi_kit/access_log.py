"""One structured access-log event per request: :class:`AccessLogMiddleware`.

:class:`AccessLogMiddleware` emits one structlog event per request when the
response completes (or the app raises, or the client goes away) with method,
path, status, duration, client, byte counts, request id and trace ids.

Also importable from :mod:`asgi_kit.logging`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging as _stdlib_logging
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import Any

import structlog
from opentelemetry.trace import Span, get_current_span

from ._http import (
    PathMatcher,
    asgi3,
    client_host,
    header_value,
)
from ._routes import route_template
from .request_id import REQUEST_ID_KEY, get_request_id
from .types import AnyASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_LEVELS", "AccessLogMiddleware"]

# --------------------------------------------------------------------------- access log

# Reports a broken access logger (stdlib logging handles its own handler errors).
_internal_log = _stdlib_logging.getLogger("asgi_kit.logging")

_LEVELS = ("debug", "info", "warning", "error", "critical")
_LEVEL_NUMBERS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_LEVEL_KEYS = ("1xx", "2xx", "3xx", "4xx", "5xx", "exception")
DEFAULT_LEVELS: Mapping[str, str] = {
    "1xx": "info",
    "2xx": "info",
    "3xx": "info",
    "4xx": "info",
    "5xx": "error",
    "exception": "error",
}


def _level_table(levels: Mapping[str, str] | None) -> tuple[tuple[str, ...], str]:
    """Levels indexed by ``status // 100`` (0..5, 0 for "nothing sent"), and for exceptions."""
    merged = dict(DEFAULT_LEVELS)
    if levels is not None:
        if not isinstance(levels, Mapping):
            raise TypeError("levels must be a mapping such as {'4xx': 'warning'}")
        for key, value in levels.items():
            if key not in _LEVEL_KEYS:
                raise ValueError(f"levels: unknown key {key!r}; expected one of {_LEVEL_KEYS}")
            if not isinstance(value, str) or value.lower() not in _LEVELS:
                raise ValueError(f"levels[{key!r}]: {value!r} is not one of {_LEVELS}")
            merged[key] = value.lower()
    by_class = tuple(merged[f"{n}xx"] for n in (2, 1, 2, 3, 4, 5))
    return by_class, merged["exception"]


def _check_logger(logger: Any, methods: set[str]) -> None:
    """Raise TypeError when ``logger`` visibly lacks a level method it will be called with.

    Looked up statically: probing a structlog lazy proxy with ``getattr``
    would build (and, with ``cache_logger_on_first_use``, freeze) a logger
    before the application has configured structlog.  Objects that resolve
    methods dynamically (``__getattr__``) are trusted.
    """
    if hasattr(type(logger), "__getattr__"):
        return
    absent = object()
    missing = [m for m in sorted(methods) if inspect.getattr_static(logger, m, absent) is absent]
    if missing:
        raise TypeError(f"logger must have {'/'.join(missing)} methods, got {logger!r}")


def _ws_size(message: Message) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text")
    return len(text.encode("utf-8")) if text is not None else 0


class AccessLogMiddleware:
    """One structured log event per request.

    Args:
        app: The ASGI application to wrap.
        logger: A structlog-style logger (anything with ``info``/``error``…
            methods taking an event and keyword fields), or a stdlib
            :class:`logging.Logger`, which is wrapped in structlog's
            ``structlog.stdlib.BoundLogger`` so the configured processors
            render the fields.  A logger that raises is reported on the
            stdlib logger ``asgi_kit.logging``; the request goes on.  Default:
            ``structlog.get_logger("asgi_kit.access")``, which follows the
            structlog configuration in force when the event is emitted and,
            when structlog is routed to the standard library, logs to the
            stdlib logger ``asgi_kit.access``.
        exclude_paths: Paths not logged (health checks): exact paths,
            ``/prefix/*`` or glob patterns.
        levels: Overrides of the level per outcome; keys ``"1xx"`` …
            ``"5xx"`` and ``"exception"``.  Default: ``error`` for 5xx and
            exceptions, ``info`` otherwise.
        log_query_string: Add the raw query string as ``query`` (off by
            default: query strings often carry tokens).
        event: The event name of HTTP requests.
        websocket_event: The event name of WebSocket connections.

    HTTP events carry ``method``, ``path``, ``status``, ``duration_ms``,
    ``client``, ``user_agent``, ``request_bytes``, ``response_bytes``,
    ``http_version``, ``scheme``, ``request_id``, ``disconnected``, and when
    known ``route``, ``query``, ``trace_id`` and ``span_id``.  An exception
    from the app is logged with its traceback (``exc_info``) and re-raised.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        logger: Any | None = None,
        *,
        exclude_paths: Iterable[str] = (),
        levels: Mapping[str, str] | None = None,
        log_query_string: bool = False,
        event: str = "request",
        websocket_event: str = "websocket",
    ) -> None:
        self.app = asgi3(app)
        self._levels, self._exception_level = _level_table(levels)
        self._is_enabled_for: Callable[[int], bool] | None = None
        if isinstance(logger, _stdlib_logging.Logger):
            # A plain stdlib logger takes no keyword fields: put structlog's
            # stdlib BoundLogger (with the configured processors) in front.
            self._is_enabled_for = logger.isEnabledFor
            logger = structlog.wrap_logger(logger, wrapper_class=structlog.stdlib.BoundLogger)
        elif logger is not None:
            _check_logger(logger, {*self._levels, self._exception_level})
            # structlog's filtering and stdlib loggers can say up front whether
            # a level is dropped.  Looked up statically, like _check_logger.
            if callable(inspect.getattr_static(logger, "is_enabled_for", None)):
                self._is_enabled_for = logger.is_enabled_for
        else:
            logger = structlog.get_logger("asgi_kit.access")
        self.logger = logger
        self.exclude_paths = PathMatcher(exclude_paths, "exclude_paths")
        self.log_query_string = bool(log_query_string)
        for name, value in (("event", event), ("websocket_event", websocket_event)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty str")
        self.event = event
        self.websocket_event = websocket_event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "http":
            if self.exclude_paths and self.exclude_paths(scope["path"]):
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        elif scope_type == "websocket":
            if self.exclude_paths and self.exclude_paths(scope["path"]):
                await self.app(scope, receive, send)
            else:
                await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = perf_counter()
        # The span around this middleware (TracingMiddleware sits outside it):
        # read now, since at the final send the app's own spans may be current.
        span = get_current_span()
        status: int | None = None
        request_bytes = 0
        response_bytes = 0
        complete = False
        disconnected = False
        finished = 0.0  # when the response completed (0: not yet)
        logged = False

        async def counting_receive() -> Message:
            nonlocal request_bytes, disconnected
            message = await receive()
            if message["type"] == "http.request":
                request_bytes += len(message.get("body", b""))
            elif message["type"] == "http.disconnect" and not complete:
                disconnected = True
            return message

        def log(gone: bool, exc: BaseException | None = None) -> None:
            self._log_http(
                scope, start, status, request_bytes, response_bytes, gone, exc, finished, span
            )

        async def counting_send(message: Message) -> None:
            nonlocal status, response_bytes, complete, disconnected, finished, logged
            message_type = message["type"]
            if message_type == "http.response.body":
                response_bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    complete = True
            elif message_type == "http.response.start":
                status = int(message["status"])
            elif message_type == "http.response.pathsend":
                complete = True
            try:
                await send(message)
            except OSError:
                # ASGI servers raise an OSError subclass when the client is gone.
                disconnected = True
                raise
            if complete and not finished:
                finished = perf_counter()
                # Logged now, not after background work the app runs once the
                # response is out.  A 5xx waits for the app to return instead:
                # Starlette's ServerErrorMiddleware sends its 500 and then
                # re-raises, and the event should carry that exception.
                if status is not None and status < 500:
                    logged = True
                    log(False)

        try:
            await self.app(scope, counting_receive, counting_send)
        except asyncio.CancelledError:
            # Servers cancel the app when the client goes away mid-response.
            if not logged:
                log(not finished)
            raise
        except Exception as exc:
            if logged:
                raise  # after a complete response: the server logs the error itself
            if disconnected:
                # The send to a gone client failed: not an application error.
                log(True)
                raise
            if status is None:
                status = 500  # what the server answers for an app that raised
            log(False, exc)
            raise
        if logged:
            return
        if status is None and not disconnected:
            status = 500  # returned without responding: the server answers 500
        log(disconnected)

    def _fields(
        self,
        scope: Scope,
        head: dict[str, Any],
        request_bytes: int,
        response_bytes: int,
        disconnected: bool,
        span: Span,
    ) -> dict[str, Any]:
        """``head`` (method/path/status/duration first, for readable lines) plus the rest."""
        headers = scope["headers"]
        user_agent = header_value(headers, b"user-agent")
        state = scope.get("state")
        request_id = state.get(REQUEST_ID_KEY) if state else None
        fields = head
        fields["client"] = client_host(scope)
        fields["request_bytes"] = request_bytes
        fields["response_bytes"] = response_bytes
        fields["user_agent"] = None if user_agent is None else user_agent.decode("latin-1")
        fields["http_version"] = scope.get("http_version")
        fields["scheme"] = scope.get("scheme")
        fields["request_id"] = request_id if request_id is not None else get_request_id()
        fields["disconnected"] = disconnected
        if self.log_query_string:
            query = scope.get("query_string")
            if query:
                fields["query"] = query.decode("latin-1")
        route = route_template(scope)
        if route is not None:
            fields["route"] = route
        span_context = span.get_span_context()
        if span_context.is_valid:
            fields["trace_id"] = format(span_context.trace_id, "032x")
            fields["span_id"] = format(span_context.span_id, "016x")
        return fields

    def _log_http(
        self,
        scope: Scope,
        start: float,
        status: int | None,
        request_bytes: int,
        response_bytes: int,
        disconnected: bool,
        exc: BaseException | None,
        end: float,
        span: Span,
    ) -> None:
        level = self._level(status, exc)
        if level is None:
            return
        head = {
            "method": scope.get("method"),
            "path": scope["path"],
            "status": status,
            "duration_ms": round(((end or perf_counter()) - start) * 1000.0, 3),
        }
        fields = self._fields(scope, head, request_bytes, response_bytes, disconnected, span)
        if exc is not None:
            fields["exc_info"] = exc
        self._emit(level, self.event, fields)

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        """Log the event; a failing logger never fails the request it describes."""
        try:
            getattr(self.logger, level)(event, **fields)
        except Exception:
            _internal_log.exception(
                "AccessLogMiddleware: the logger raised; event %r dropped", event
            )

    def _level(self, status: int | None, exc: BaseException | None) -> str | None:
        """The level method to call, or None when the logger would drop the event."""
        if exc is not None:
            level = self._exception_level
        else:
            level = self._levels[status // 100 if status is not None and 0 < status < 600 else 0]
        if self._is_enabled_for is not None and not self._is_enabled_for(_LEVEL_NUMBERS[level]):
            return None  # filtered out: do not even build the fields
        return level

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = perf_counter()
        span = get_current_span()
        status: int | None = None
        close_code: int | None = None
        bytes_in = 0
        bytes_out = 0
        disconnected = send_failed = False

        async def counting_receive() -> Message:
            nonlocal bytes_in, close_code, disconnected
            message = await receive()
            message_type = message["type"]
            if message_type == "websocket.receive":
                bytes_in += _ws_size(message)
            elif message_type == "websocket.disconnect" and close_code is None:
                # The client closed first (the app had not sent websocket.close).
                disconnected = True
                close_code = int(message.get("code", 1005))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal bytes_out, status, close_code, disconnected, send_failed
            message_type = message["type"]
            if message_type == "websocket.send":
                bytes_out += _ws_size(message)
            elif message_type == "websocket.accept":
                status = 101
            elif message_type == "websocket.close":
                if status is None:
                    status = 403  # closing before accepting refuses the handshake
                if close_code is None:
                    close_code = int(message.get("code", 1000))
            elif message_type == "websocket.http.response.start":
                status = int(message["status"])
            try:
                await send(message)
            except OSError:
                disconnected = send_failed = True
                raise

        exc: BaseException | None = None
        try:
            await self.app(scope, counting_receive, counting_send)
        except asyncio.CancelledError:
            disconnected = True
            raise
        except Exception as error:
            if not send_failed:
                exc = error
                if status is None:
                    status = 500
            raise
        finally:
            level = self._level(status, exc)
            if level is not None:
                head = {
                    "path": scope["path"],
                    "status": status,
                    "close_code": close_code,
                    "duration_ms": round((perf_counter() - start) * 1000.0, 3),
                }
                fields = self._fields(scope, head, bytes_in, bytes_out, disconnected, span)
                if exc is not None:
                    fields["exc_info"] = exc
                self._emit(level, self.websocket_event, fields)
