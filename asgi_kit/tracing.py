"""OpenTelemetry tracing for any ASGI app: one SERVER span per request.

:class:`TracingMiddleware` is built on ``opentelemetry-api`` only.  It starts
one ``SERVER`` span per HTTP request and per WebSocket connection, parented on
whatever the globally configured propagator extracts from the request headers
(W3C ``traceparent``/``tracestate`` and baggage by default), names it after the
route template the framework matched (``"GET /items/{item_id}"``, never the raw
path) and records the stable HTTP semantic-convention attributes.

When no SDK is configured (the global tracer provider is still the API's
default) a request costs a couple of attribute look-ups; the global provider
is re-checked on every request, so an SDK set up after the middleware was built
(in a startup hook, say) is picked up as soon as it is installed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry import propagate
from opentelemetry import trace as trace_api
from opentelemetry.context import Context, attach, detach
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import (
    NoOpTracer,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
)

from . import _observer
from ._http import (
    MutableHeaders,
    asgi3,
    client_host,
    header_value,
    header_values,
)
from ._observer import (
    OTHER_METHOD,
    HTTPObserver,
    WebSocketObserver,
)
from ._observer import known_methods as known_methods_of
from ._plumbing.hosts import split_host
from ._plumbing.options import check_exclude_paths
from ._routes import route_template
from ._version import __version__
from .types import AnyASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = ["TracingMiddleware"]

logger = logging.getLogger("asgi_kit.tracing")

#: Instrumentation scope name reported on every span.
INSTRUMENTATION_NAME = "asgi_kit.tracing"
#: Semantic-convention schema the attribute names follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.27.0"

# Environment variables understood by OpenTelemetry Python's own instrumentations.
ENV_EXCLUDED_URLS = "OTEL_PYTHON_ASGI_EXCLUDED_URLS"
ENV_EXCLUDED_URLS_GENERIC = "OTEL_PYTHON_EXCLUDED_URLS"
ENV_CAPTURE_REQUEST = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"
ENV_CAPTURE_RESPONSE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE"
ENV_SANITIZE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"
#: The known-method list and its variable, shared with metrics and the access log.
ENV_KNOWN_METHODS = _observer.ENV_KNOWN_METHODS
DEFAULT_KNOWN_METHODS = _observer.DEFAULT_KNOWN_METHODS
_ENV_TRACER_PROVIDER = "OTEL_PYTHON_TRACER_PROVIDER"

# Stable HTTP semantic-convention attribute names (opentelemetry-semantic-conventions
# is not a dependency, so the few names are spelled out here).
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_REQUEST_METHOD_ORIGINAL = "http.request.method_original"
HTTP_ROUTE = "http.route"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_RESPONSE_BODY_SIZE = "http.response.body.size"
URL_PATH = "url.path"
URL_QUERY = "url.query"
URL_SCHEME = "url.scheme"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
CLIENT_ADDRESS = "client.address"
USER_AGENT_ORIGINAL = "user_agent.original"
NETWORK_PROTOCOL_VERSION = "network.protocol.version"
NETWORK_PROTOCOL_NAME = "network.protocol.name"
ERROR_TYPE = "error.type"

REDACTED = "[REDACTED]"
# Query parameters semconv asks to redact in ``url.query`` (signed-URL secrets).
_QUERY_SECRET_RE = re.compile(
    r"(?i)(^|&)(AWSAccessKeyId|Signature|sig|X-Goog-Signature)=[^&]*",
)
_QUERY_SECRET_HINT = re.compile(r"(?i)sig|awsaccesskeyid")
# Bound on cached header-name decisions: client header names are untrusted.
_HEADER_CACHE_MAX = 512

#: ``span_name(scope) -> str`` chooses the span name once the app has run.
SpanNameCallback = Callable[[Scope], str]
#: ``server_request_hook(span, scope)`` runs right after the span starts.
ServerRequestHook = Callable[[Span, Scope], None]
#: ``client_response_hook(span, message)`` runs for every message the app sends.
ClientResponseHook = Callable[[Span, Message], None]

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


# --------------------------------------------------------------------------- propagation


class _ASGIHeaderGetter(Getter[RawHeaders]):
    """Reads propagation fields straight from the raw ASGI header list."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        # Keys come from the installed propagators (a handful), never from clients.
        self._keys: dict[str, bytes] = {}

    def get(self, carrier: RawHeaders, key: str) -> list[str] | None:
        name = self._keys.get(key)
        if name is None:
            name = key.lower().encode("latin-1", "replace")
            if len(self._keys) < 64:
                self._keys[key] = name
        values = header_values(carrier, name)
        if not values:
            return None
        return [v.decode("latin-1") for v in values]

    def keys(self, carrier: RawHeaders) -> list[str]:
        return [k.decode("latin-1").lower() for k, _ in carrier]


_GETTER = _ASGIHeaderGetter()


# --------------------------------------------------------------------------- options


def _regex_list(value: str | Iterable[str] | None, option: str) -> list[str]:
    """Turn a comma-separated string or a list of regexes into a list of strings."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{option}: expected strings, got {item!r}")
        item = item.strip()
        if item:
            result.append(item)
    return result


def _compile(patterns: list[str], option: str, flags: int = 0) -> re.Pattern[str] | None:
    if not patterns:
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns), flags)
    except re.error as exc:
        raise ValueError(f"{option}: invalid regular expression ({exc})") from None


def _env_or_option(
    value: str | Iterable[str] | None, option: str, *env_names: str
) -> tuple[list[str], str]:
    """The explicit option when given, else the first environment variable set."""
    if value is not None:
        return _regex_list(value, option), option
    for env in env_names:
        raw = os.environ.get(env)
        if raw and raw.strip():
            return _regex_list(raw, env), env
    return [], option


class _HeaderCapture:
    """Turns configured header-name regexes into span attributes, with a name cache."""

    __slots__ = ("_cache", "_names", "_prefix", "_sanitize")

    def __init__(
        self, names: re.Pattern[str], sanitize: re.Pattern[str] | None, prefix: str
    ) -> None:
        self._names = names
        self._sanitize = sanitize
        self._prefix = prefix
        # raw header name -> (attribute key, redact?) or None when not captured.
        self._cache: dict[bytes, tuple[str, bool] | None] = {}

    def _decide(self, raw: bytes) -> tuple[str, bool] | None:
        decision = self._cache.get(raw, False)
        if decision is not False:
            return decision  # type: ignore[return-value]
        name = raw.decode("latin-1").lower()
        result: tuple[str, bool] | None = None
        if self._names.fullmatch(name):
            redact = self._sanitize is not None and self._sanitize.fullmatch(name) is not None
            result = (self._prefix + name, redact)
        if len(self._cache) < _HEADER_CACHE_MAX:
            self._cache[raw] = result
        return result

    def attributes(self, headers: RawHeaders) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for raw, value in headers:
            decision = self._decide(raw)
            if decision is not None:
                key, redact = decision
                text = REDACTED if redact else value.decode("latin-1")
                found.setdefault(key, []).append(text)
        return found


# --------------------------------------------------------------------------- helpers


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__builtin__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _redact_query(query: str) -> str:
    if _QUERY_SECRET_HINT.search(query) is None:
        return query
    return _QUERY_SECRET_RE.sub(r"\1\2=REDACTED", query)


def _traceresponse(span: Span) -> bytes | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return b"00-%032x-%016x-%02x" % (ctx.trace_id, ctx.span_id, int(ctx.trace_flags))


def _run_hook(hook: Callable[..., Any], name: str, *args: Any) -> None:
    try:
        hook(*args)
    except Exception:
        logger.exception("asgi_kit.tracing: %s raised; the request goes on", name)


# The one private name of opentelemetry-api asgi_kit reads: the module slot
# ``opentelemetry.trace._TRACER_PROVIDER`` that ``set_tracer_provider`` fills.
# Why: the public ``get_tracer_provider()`` costs an ``os.environ`` look-up on
# every call until an SDK is installed (about 0.6 us, twice what the whole
# middleware costs a request without an SDK), and no public API says "has a
# provider been set" more cheaply.  When the slot moves, the public call takes
# over (same behaviour, slower), and a test in tests/test_tracing.py fails so
# the move is noticed.
_PROVIDER_SLOT = "_TRACER_PROVIDER"
_SLOT_MOVED = _PROVIDER_SLOT not in vars(trace_api)


def _installed_global_provider() -> TracerProvider | None:
    """The provider given to ``set_tracer_provider``, or None while none is."""
    if _SLOT_MOVED:
        public = trace_api.get_tracer_provider()
        return None if isinstance(public, ProxyTracerProvider) else public
    slot: TracerProvider | None = getattr(trace_api, _PROVIDER_SLOT)
    return slot


# --------------------------------------------------------------------------- middleware


class TracingMiddleware:
    """Create one OpenTelemetry ``SERVER`` span per HTTP request / WebSocket connection.

    Parameters:
        app: The ASGI application to wrap (ASGI 3, or ASGI 2 which is adapted).
        tracer_provider: The :class:`~opentelemetry.trace.TracerProvider` to use.
            ``None`` (the default) uses the global provider, looked up on each
            request until one is installed, so an SDK configured after the
            middleware was created is still used.  While the global is the
            API's default (no SDK) a request costs a few attribute look-ups.
        excluded_paths: Paths that get no span: exact paths, ``/prefix/*`` or
            globs (see :class:`asgi_kit._http.PathMatcher`); the name
            opentelemetry-instrumentation-asgi users know.
        exclude_paths: The same option under the name every asgi_kit
            middleware uses (keyword-only).  Give one of the two.
        server_request_hook: ``hook(span, scope)`` called when a recording span
            starts.  Errors are logged, never raised into the request.
        span_name: ``callable(scope) -> str`` naming the span once the app has
            run (the scope then carries the matched route).  Default:
            ``"{method} {route}"``, or ``"{method}"`` when no route is known.
        client_response_hook: ``hook(span, message)`` called for every message
            the app sends while the span records.  Errors are logged.
        capture_request_headers: Header-name regexes (list, or a
            comma-separated string) whose values become
            ``http.request.header.<name>`` attributes.  ``None`` reads
            ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST``.
        capture_response_headers: The same for response headers
            (``http.response.header.<name>``;
            ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE``).
        sanitize_headers: Header-name regexes whose captured values are
            replaced by ``"[REDACTED]"``.  ``None`` reads
            ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS``.
        excluded_urls: Regexes searched in ``scheme://host[:port]/path``;
            matching requests get no span.  ``None`` reads
            ``OTEL_PYTHON_ASGI_EXCLUDED_URLS``, then ``OTEL_PYTHON_EXCLUDED_URLS``.
        traceresponse: Add the W3C ``traceresponse`` header to HTTP responses.
        known_methods: Methods reported as themselves; others become
            ``_OTHER``.  ``None`` reads ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS``
            or uses the semantic-convention list.

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        from asgi_kit import TracingMiddleware

        app = TracingMiddleware(app, tracer_provider=TracerProvider())
    """

    def __init__(
        self,
        app: AnyASGIApp,
        tracer_provider: TracerProvider | None = None,
        excluded_paths: Sequence[str] | None = None,
        server_request_hook: ServerRequestHook | None = None,
        span_name: SpanNameCallback | None = None,
        *,
        exclude_paths: Sequence[str] = (),
        client_response_hook: ClientResponseHook | None = None,
        capture_request_headers: str | Sequence[str] | None = None,
        capture_response_headers: str | Sequence[str] | None = None,
        sanitize_headers: str | Sequence[str] | None = None,
        excluded_urls: str | Sequence[str] | None = None,
        traceresponse: bool = False,
        known_methods: Iterable[str] | None = None,
    ) -> None:
        self.app = asgi3(app)
        for option, value in (
            ("server_request_hook", server_request_hook),
            ("span_name", span_name),
            ("client_response_hook", client_response_hook),
        ):
            if value is not None and not callable(value):
                raise TypeError(f"{option} must be a callable or None, got {value!r}")
        if not isinstance(traceresponse, bool):
            raise TypeError(f"traceresponse must be a bool, got {traceresponse!r}")
        self.server_request_hook = server_request_hook
        self.client_response_hook = client_response_hook
        self.span_name = span_name
        self.traceresponse = traceresponse
        self.excluded_paths = check_exclude_paths(exclude_paths, (), excluded_paths=excluded_paths)
        self._path_excluded = self.excluded_paths if self.excluded_paths else None

        # Tracer: explicit provider now; the global one lazily (see _global_tracer).
        self._tracer: Tracer | None = None
        self._use_global = False
        self._load_global = False
        if tracer_provider is None or isinstance(tracer_provider, ProxyTracerProvider):
            self._use_global = True
            self._load_global = _ENV_TRACER_PROVIDER in os.environ
        elif callable(getattr(tracer_provider, "get_tracer", None)):
            self._tracer = self._make_tracer(tracer_provider)
        else:
            raise TypeError(
                f"tracer_provider must be an opentelemetry TracerProvider or None, "
                f"got {tracer_provider!r}"
            )

        url_patterns, url_source = _env_or_option(
            excluded_urls, "excluded_urls", ENV_EXCLUDED_URLS, ENV_EXCLUDED_URLS_GENERIC
        )
        self._excluded_urls = _compile(url_patterns, url_source)

        sanitize, sanitize_source = _env_or_option(
            sanitize_headers, "sanitize_headers", ENV_SANITIZE
        )
        sanitize_re = _compile(sanitize, sanitize_source, re.IGNORECASE)
        self._request_capture = self._capture(
            capture_request_headers,
            "capture_request_headers",
            ENV_CAPTURE_REQUEST,
            sanitize_re,
            "http.request.header.",
        )
        self._response_capture = self._capture(
            capture_response_headers,
            "capture_response_headers",
            ENV_CAPTURE_RESPONSE,
            sanitize_re,
            "http.response.header.",
        )

        self._known_methods = known_methods_of(known_methods)

    @staticmethod
    def _capture(
        value: str | Sequence[str] | None,
        option: str,
        env: str,
        sanitize: re.Pattern[str] | None,
        prefix: str,
    ) -> _HeaderCapture | None:
        patterns, source = _env_or_option(value, option, env)
        compiled = _compile(patterns, source, re.IGNORECASE)
        return None if compiled is None else _HeaderCapture(compiled, sanitize, prefix)

    @staticmethod
    def _make_tracer(provider: TracerProvider) -> Tracer | None:
        """A tracer from ``provider``, or None when it can only ever be a no-op."""
        if isinstance(provider, NoOpTracerProvider):
            return None
        tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__, SCHEMA_URL)
        return None if isinstance(tracer, NoOpTracer) else tracer

    def _global_tracer(self) -> Tracer | None:
        """The global provider's tracer once an SDK is installed, else None.

        The API's default global is a ``ProxyTracerProvider`` that forwards to
        a provider set later with ``set_tracer_provider`` (once per process).
        Once set, the global cannot change, so the tracer is cached.
        """
        # The slot read inline (no call): this runs on every request until an SDK is set.
        provider = (
            _installed_global_provider() if _SLOT_MOVED else getattr(trace_api, _PROVIDER_SLOT)
        )
        if provider is None:
            if not self._load_global:
                return None
            # OTEL_PYTHON_TRACER_PROVIDER names an entry point: let the API load it once.
            self._load_global = False
            provider = trace_api.get_tracer_provider()
            if isinstance(provider, ProxyTracerProvider):
                return None
        self._use_global = False
        self._tracer = self._make_tracer(provider)
        return self._tracer

    # ----------------------------------------------------------------------- request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = self._tracer
        if tracer is None and (not self._use_global or (tracer := self._global_tracer()) is None):
            await self.app(scope, receive, send)
            return
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path") or "/"
        path_excluded = self._path_excluded
        excluded_urls = self._excluded_urls
        if (path_excluded is not None and path_excluded(path)) or (
            excluded_urls is not None and self._url_excluded(excluded_urls, scope, path)
        ):
            await self.app(scope, receive, send)
            return
        await self._traced(tracer, scope, receive, send, kind == "websocket")

    @staticmethod
    def _url_excluded(pattern: re.Pattern[str], scope: Scope, path: str) -> bool:
        scheme = scope.get("scheme") or ("ws" if scope["type"] == "websocket" else "http")
        host = header_value(scope.get("headers") or (), b"host")
        if host is not None:
            netloc = host.decode("latin-1")
        else:
            server = scope.get("server")
            netloc = f"{server[0]}:{server[1]}" if server and server[1] else ""
        return pattern.search(f"{scheme}://{netloc}{path}") is not None

    def _start_attributes(
        self, scope: Scope, headers: RawHeaders, method: str, is_ws: bool
    ) -> dict[str, Any]:
        """Attributes known before the app runs (given to the sampler)."""
        scheme = scope.get("scheme") or ("ws" if is_ws else "http")
        attrs: dict[str, Any] = {
            HTTP_REQUEST_METHOD: method,
            URL_PATH: scope.get("path") or "/",
            URL_SCHEME: scheme,
        }
        query = scope.get("query_string")
        if query:
            attrs[URL_QUERY] = _redact_query(query.decode("latin-1"))
        # The Host header is what the client asked for; scope["server"] is the socket.
        host = header_value(headers, b"host")
        address, port = split_host(host.decode("latin-1")) if host else ("", None)
        if address:
            attrs[SERVER_ADDRESS] = address
            if port is None:
                port = _DEFAULT_PORTS.get(scheme)
        else:
            server = scope.get("server")
            if server and server[0]:
                attrs[SERVER_ADDRESS] = server[0]
                port = server[1]
        if port is not None:
            attrs[SERVER_PORT] = port
        client = client_host(scope)
        if client is not None:
            attrs[CLIENT_ADDRESS] = client
        agent = header_value(headers, b"user-agent")
        if agent is not None:
            attrs[USER_AGENT_ORIGINAL] = agent.decode("latin-1")
        version = scope.get("http_version")
        if version:
            attrs[NETWORK_PROTOCOL_VERSION] = version
        if is_ws:
            attrs[NETWORK_PROTOCOL_NAME] = "websocket"
        return attrs

    async def _traced(
        self, tracer: Tracer, scope: Scope, receive: Receive, send: Send, is_ws: bool
    ) -> None:
        headers: RawHeaders = scope.get("headers") or ()
        raw_method = "GET" if is_ws else scope.get("method") or "GET"
        # Exact match, as the semantic conventions ask: "get" is not GET.
        method = raw_method if raw_method in self._known_methods else OTHER_METHOD
        attrs = self._start_attributes(scope, headers, method, is_ws)
        if method != raw_method:
            attrs[HTTP_REQUEST_METHOD_ORIGINAL] = raw_method

        try:
            parent: Context | None = propagate.extract(headers, getter=_GETTER)
        except Exception:
            # A custom propagator choking on hostile input must not fail the request:
            # start a new trace (None = the current context, normally empty).
            logger.debug("asgi_kit.tracing: propagator failed; starting a new trace", exc_info=True)
            parent = None
        name_method = "HTTP" if method is OTHER_METHOD else method
        span = tracer.start_span(
            name_method, context=parent, kind=SpanKind.SERVER, attributes=attrs
        )
        token = attach(trace_api.set_span_in_context(span, parent))
        try:
            recording = span.is_recording()
            if recording:
                if self._request_capture is not None:
                    span.set_attributes(self._request_capture.attributes(headers))
                if self.server_request_hook is not None:
                    _run_hook(self.server_request_hook, "server_request_hook", span, scope)
            elif not self.traceresponse:
                # Sampled out: the context still flows to the app, nothing else to do.
                await self.app(scope, receive, send)
                return
            await self._run_recorded(span, scope, receive, send, recording, name_method, is_ws)
        finally:
            detach(token)

    async def _run_recorded(
        self,
        span: Span,
        scope: Scope,
        receive: Receive,
        send: Send,
        recording: bool,
        name_method: str,
        is_ws: bool,
    ) -> None:
        # Per-request state lives in the observer, never on self.
        traceresponse = _traceresponse(span) if self.traceresponse and not is_ws else None
        capture = self._response_capture if recording else None
        observer: HTTPObserver | _WebSocketSpanObserver
        if is_ws:
            observer = _WebSocketSpanObserver(receive, send, span, capture)
        elif capture is None and traceresponse is None:
            observer = HTTPObserver(receive, send)  # nothing to do at the start
        else:
            observer = _SpanObserver(receive, send, span, capture, traceresponse)
        app_send: Send | None = None
        hook = self.client_response_hook if recording else None
        if hook is not None:

            async def app_send(message: Message) -> None:
                _run_hook(hook, "client_response_hook", span, message)
                await observer.send(message)

        try:
            await self.app(scope, observer.receive, app_send or observer.send)
        except asyncio.CancelledError:
            observer.cancelled()
            raise
        except Exception as exc:
            observer.raised(exc)
            raise
        finally:
            if recording:
                error = observer.error
                if error is not None:
                    span.record_exception(error)
                    span.set_attribute(ERROR_TYPE, _error_type(error))
                    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                self._finish(
                    span,
                    scope,
                    observer.final_status(),
                    observer.response_bytes,
                    name_method,
                    observer.error is not None,
                )
            span.end()

    def _finish(
        self,
        span: Span,
        scope: Scope,
        status_code: int,
        body_size: int,
        name_method: str,
        errored: bool,
    ) -> None:
        # One set_attributes call: each SDK call takes the span's lock.
        attributes: dict[str, Any] = {HTTP_RESPONSE_STATUS_CODE: status_code}
        route = route_template(scope)
        if route is not None:
            attributes[HTTP_ROUTE] = route
        if body_size:
            attributes[HTTP_RESPONSE_BODY_SIZE] = body_size
        if status_code >= 500 and not errored:
            attributes[ERROR_TYPE] = str(status_code)
            span.set_status(Status(StatusCode.ERROR))
        span.set_attributes(attributes)
        name: str | None = None
        if self.span_name is not None:
            try:
                custom = self.span_name(scope)
            except Exception:
                logger.exception("asgi_kit.tracing: span_name raised; using the default name")
            else:
                if isinstance(custom, str) and custom:
                    name = custom
        if name is None and route is not None:
            name = f"{name_method} {route}"
        if name is not None:
            span.update_name(name)


class _SpanObserver(HTTPObserver):
    """Captures response headers and adds ``traceresponse`` when the response starts."""

    __slots__ = ("capture", "span", "traceresponse")

    def __init__(
        self,
        receive: Receive,
        send: Send,
        span: Span,
        capture: _HeaderCapture | None,
        traceresponse: bytes | None,
    ) -> None:
        super().__init__(receive, send)
        self.span = span
        self.capture = capture
        self.traceresponse = traceresponse

    def started(self, message: Message) -> Message:
        if self.capture is not None:
            self.span.set_attributes(self.capture.attributes(message.get("headers") or ()))
        if self.traceresponse is not None:
            message, headers = MutableHeaders.copy_of(message)
            headers.set(b"traceresponse", self.traceresponse)
        return message


class _WebSocketSpanObserver(WebSocketObserver):
    """Captures the headers of a handshake denial response."""

    __slots__ = ("capture", "span")

    def __init__(
        self, receive: Receive, send: Send, span: Span, capture: _HeaderCapture | None
    ) -> None:
        super().__init__(receive, send)
        self.span = span
        self.capture = capture

    def started(self, message: Message) -> Message:
        if self.capture is not None:
            self.span.set_attributes(self.capture.attributes(message.get("headers") or ()))
        return message
