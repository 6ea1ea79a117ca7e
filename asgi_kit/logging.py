"""Request ids and one structured access-log event per request.

:class:`RequestIDMiddleware` gives every HTTP request and WebSocket connection
an id (a valid incoming ``X-Request-ID`` or a fresh one), echoes it on the
response, stores it in ``scope["state"]["request_id"]``, binds it in
:mod:`structlog.contextvars` for exactly the duration of the request, and
puts it on the current OpenTelemetry span.  :func:`get_request_id` reads it
from anywhere inside the request without structlog.

:class:`AccessLogMiddleware` emits one structlog event per request when the
response completes (or the app raises, or the client goes away) with method,
path, status, duration, client, byte counts, request id and trace ids.

The module is named ``logging`` inside the package; ``import logging`` here
still means the standard library (absolute imports).
"""

from __future__ import annotations

import asyncio
import inspect
import logging as _stdlib_logging
import os
from collections.abc import Callable, Iterable, Mapping
from contextvars import Context, ContextVar, copy_context
from time import perf_counter
from typing import Any

import structlog
from opentelemetry.trace import Span, get_current_span

from ._http import (
    TEXT_PLAIN,
    PathMatcher,
    asgi3,
    client_host,
    header_value,
    normalize_header_name,
    route_template,
    send_response,
)
from .types import AnyASGIApp, Message, Receive, Scope, Send

__all__ = [
    "AccessLogMiddleware",
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


def _structlog_var(key: str) -> ContextVar[Any]:
    """structlog's own ContextVar for ``key``, so binding is a single ``set``.

    ``bind_contextvars`` returns tokens; a token knows its variable, which is
    the public way to reach the variable structlog's ``merge_contextvars``
    reads.  Binding then resetting leaves the current context unchanged.
    """
    token = structlog.contextvars.bind_contextvars(**{key: ...})[key]
    var: ContextVar[Any] = token.var
    var.reset(token)
    return var


_STRUCTLOG_REQUEST_ID = _structlog_var(REQUEST_ID_KEY)
# structlog's registry of its per-key variables (stable since structlog 21.1).
# Walking it costs one step per key ever bound, instead of one per variable
# of the whole context; the public prefix scan is the fallback.
_STRUCTLOG_VARS: dict[str, ContextVar[Any]] | None = getattr(
    structlog.contextvars, "_CONTEXT_VARS", None
)
if not isinstance(_STRUCTLOG_VARS, dict):  # pragma: no cover
    _STRUCTLOG_VARS = None
_STRUCTLOG_PREFIX: str = getattr(structlog.contextvars, "STRUCTLOG_KEY_PREFIX", "structlog_")


def _restore_structlog(before: Context) -> None:
    """Put every structlog contextvar back to its value in ``before``.

    Keys the app bound during the request are unbound again (structlog's
    "unbound" value is ``...``), so nothing leaks into whatever runs next on
    the same task; the copy of the context taken before the request is O(1).
    ``request_id`` itself is reset by its token before this runs.
    """
    variables = _STRUCTLOG_VARS
    if variables is None:  # pragma: no cover - a structlog without the registry
        for var in [v for v in copy_context() if v.name.startswith(_STRUCTLOG_PREFIX)]:
            _restore_var(var, before)
        return
    if len(variables) == 1:
        return  # only request_id has ever been bound in this process
    try:
        for var in variables.values():
            old = before.get(var, ...)
            if var.get(...) is not old:
                var.set(old)
    except RuntimeError:  # another thread bound a new key meanwhile: walk a copy
        for var in tuple(variables.values()):
            _restore_var(var, before)


def _restore_var(var: ContextVar[Any], before: Context) -> None:
    old = before.get(var, ...)
    if var.get(...) is not old:
        var.set(old)


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
        if span_attribute is not None and (
            not isinstance(span_attribute, str) or not span_attribute
        ):
            raise ValueError("span_attribute must be a non-empty str or None")
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
        self.error_response = bool(error_response)
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
            _restore_structlog(before)


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
