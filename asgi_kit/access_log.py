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
from ._observer import OTHER_METHOD, HTTPObserver, WebSocketObserver
from ._observer import known_methods as known_methods_of
from ._plumbing.options import check_bool, check_str
from ._routes import route_template
from .request_id import REQUEST_ID_KEY, get_request_id
from .types import AnyASGIApp, Receive, Scope, Send

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
        known_methods: Methods logged as themselves; any other (including a
            known one in another case, such as ``get``) is logged as
            ``method="_OTHER"`` with ``method_original``, as metrics and
            traces report it.  ``None`` reads
            ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` or uses the
            semantic-convention list.

    HTTP events carry ``method``, ``path``, ``status``, ``duration_ms``,
    ``client``, ``user_agent``, ``request_bytes``, ``response_bytes``,
    ``http_version``, ``scheme``, ``request_id``, ``disconnected``, and when
    known ``route``, ``query``, ``trace_id``, ``span_id`` and
    ``method_original``.  ``status`` follows the rules shared with tracing and
    metrics (:mod:`asgi_kit._observer`): the status sent, else ``499`` when
    the client left before any response, else ``500``.  An exception from
    the app is logged with its traceback (``exc_info``) and re-raised.
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
        known_methods: Iterable[str] | None = None,
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
        self.log_query_string = check_bool("log_query_string", log_query_string)
        check_str("event", event)
        check_str("websocket_event", websocket_event)
        self.event = event
        self.websocket_event = websocket_event
        self._known_methods = known_methods_of(known_methods, "known_methods")

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
        # The span around this middleware (TracingMiddleware sits outside it):
        # read now, since at the final send the app's own spans may be current.
        observer = _LogObserver(receive, send, self, scope, perf_counter(), get_current_span())
        try:
            await self.app(scope, observer.receive, observer.send)
        except asyncio.CancelledError:
            observer.cancelled()
            raise
        except Exception as exc:
            observer.raised(exc)
            raise
        finally:
            # Unless logged at completion; an exception after a complete
            # response is re-raised for the server to log.
            if not observer.logged:
                observer.log()

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

    def _log_http(self, scope: Scope, observer: _LogObserver) -> None:
        status = observer.final_status()
        exc = observer.error
        level = self._level(status, exc)
        if level is None:
            return
        raw_method = scope.get("method") or "GET"
        method = raw_method if raw_method in self._known_methods else OTHER_METHOD
        head = {
            "method": method,
            "path": scope["path"],
            "status": status,
            "duration_ms": round(
                ((observer.completed_at or perf_counter()) - observer.begun) * 1000.0, 3
            ),
        }
        if method is OTHER_METHOD:
            head["method_original"] = raw_method
        fields = self._fields(
            scope,
            head,
            observer.request_bytes,
            observer.response_bytes,
            observer.disconnected,
            observer.span,
        )
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
        observer = WebSocketObserver(receive, send)
        try:
            await observer.run(self.app, scope)
        finally:
            status = observer.final_status()
            error = observer.error
            level = self._level(status, error)
            if level is not None:
                head = {
                    "path": scope["path"],
                    "status": status,
                    "close_code": observer.close_code,
                    "duration_ms": round((perf_counter() - start) * 1000.0, 3),
                }
                fields = self._fields(
                    scope, head, observer.bytes_in, observer.bytes_out, observer.disconnected, span
                )
                if error is not None:
                    fields["exc_info"] = error
                self._emit(level, self.websocket_event, fields)


class _LogObserver(HTTPObserver):
    """Logs a response as soon as it completed, before background work the app runs after.

    A 5xx waits for the app to return instead: Starlette's
    ServerErrorMiddleware sends its 500 and then re-raises, and the event
    should carry that exception.
    """

    __slots__ = ("begun", "logged", "middleware", "scope", "span")

    def __init__(
        self,
        receive: Receive,
        send: Send,
        middleware: AccessLogMiddleware,
        scope: Scope,
        begun: float,
        span: Span,
    ) -> None:
        super().__init__(receive, send)
        self.middleware = middleware
        self.scope = scope
        self.begun = begun
        self.span = span
        self.logged = False

    def completed(self) -> None:
        if self.status < 500:
            self.log()

    def log(self) -> None:
        self.logged = True
        self.middleware._log_http(self.scope, self)
