"""Prometheus metrics for any ASGI app: :class:`MetricsMiddleware` and :func:`metrics_app`.

Series follow the OpenTelemetry HTTP semantic conventions, named the
Prometheus way (``http.server.request.duration`` becomes
``http_server_request_duration_seconds``).  The ``route`` label is the route
template the framework matched (read from the scope after the app routed, never
re-matched), so label cardinality stays bounded under path scans.

Example::

    from asgi_kit.metrics import MetricsMiddleware

    app = MetricsMiddleware(app, metrics_path="/metrics")
"""

from __future__ import annotations

import asyncio
import atexit
import gzip
import logging
import multiprocessing.util
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from time import perf_counter
from typing import Any
from urllib.parse import parse_qs

from opentelemetry.trace import get_current_span
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ._http import (
    PathMatcher,
    asgi3,
    header_list,
    header_value,
    parse_qvalues,
    refuse_websocket,
    route_template,
    send_response,
)
from .types import AnyASGIApp, ASGIApp, Headers, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_SIZE_BUCKETS",
    "DEFAULT_WEBSOCKET_BUCKETS",
    "OVERFLOW_ROUTE",
    "UNMATCHED_ROUTE",
    "MetricsMiddleware",
    "metrics_app",
]

logger = logging.getLogger("asgi_kit.metrics")

#: OpenTelemetry's recommended buckets for ``http.server.request.duration`` (seconds).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
#: Body-size buckets in bytes: ``0`` (no body), then powers of four from 128 B to 32 MiB.
DEFAULT_SIZE_BUCKETS: tuple[float, ...] = (
    0, 128, 512, 2048, 8192, 32768, 131072, 524288, 2097152, 8388608, 33554432,
)  # fmt: skip
#: WebSocket connection lifetimes, 1 s to a day.
DEFAULT_WEBSOCKET_BUCKETS: tuple[float, ...] = (
    1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400,
)  # fmt: skip

#: ``route`` label of requests no route matched (404s, scanners).
UNMATCHED_ROUTE = "<unmatched>"
#: ``route`` label once ``max_routes`` distinct routes have been seen.
OVERFLOW_ROUTE = "<overflow>"

# OTel's http.request.method well-known set; anything else is "_OTHER" (bounded label).
_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
_OTHER = "_OTHER"
_LABELS = ("method", "route", "status_code")
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_NAMESPACE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:")

RouteResolver = Callable[[Scope], "str | None"]
_Children = tuple[Histogram, Histogram, Histogram]


def _multiprocess_enabled() -> bool:
    return bool(os.environ.get(_MULTIPROC_ENV))


_exit_hook_registered = False


def _mark_this_process_dead() -> None:
    try:
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
    except Exception:  # pragma: no cover - best effort at interpreter exit
        pass


def _remove_live_gauges_at_exit() -> None:
    """Drop this worker's ``livesum`` gauge files when it exits.

    Otherwise a worker that exited (a restart, a scale-down) keeps adding its
    last ``http_server_active_requests`` value to every scrape.  The lifespan
    shutdown does it too (see :func:`_forget_worker_on_shutdown`).  The pid is
    read at exit, so workers forked after import (``--preload``) clean up
    their own files.  A worker killed outright leaves its files; a process
    manager hook (``child_exit`` in gunicorn) still has to handle that.
    Removing already-removed files is harmless, so running twice is too.
    """
    global _exit_hook_registered
    with _SHARED_LOCK:
        if _exit_hook_registered:
            return
        _exit_hook_registered = True
    # A plain interpreter exit (gunicorn's forked workers, a single process).
    atexit.register(_mark_this_process_dead)
    # multiprocessing children (uvicorn's and hypercorn's workers) end with
    # os._exit() and skip atexit; they run multiprocessing's finalizers.
    multiprocessing.util.Finalize(None, _mark_this_process_dead, exitpriority=0)


def _forget_worker_on_shutdown(send: Send) -> Send:
    """``send`` that drops this worker's live gauges once the app shut down.

    Uvicorn's workers end by re-raising the SIGTERM they received, which skips
    every exit hook; the lifespan shutdown is the last moment code runs.
    """

    async def watching_send(message: Message) -> None:
        await send(message)
        if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            _mark_this_process_dead()

    return watching_send


def _check_buckets(value: Iterable[float], option: str) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{option} must be a sequence of numbers, got {value!r}")
    buckets = tuple(value)
    if not buckets:
        raise ValueError(f"{option} must not be empty")
    for b in buckets:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or b != b:
            raise TypeError(f"{option}: {b!r} is not a number")
    if list(buckets) != sorted(buckets) or len(set(buckets)) != len(buckets):
        raise ValueError(f"{option} must be strictly increasing, got {buckets!r}")
    return tuple(float(b) for b in buckets)


class _Collectors:
    """The metric families of one (registry, namespace), shared by middleware instances.

    Also holds the label-child caches: ``.labels()`` costs a lock, a tuple of
    ``str()`` calls and a dict look-up, so each label combination is resolved
    once.  The caches hold references to children the metrics keep anyway, so
    they are bounded by the series count, which ``max_routes`` bounds.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        namespace: str,
        signature: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]],
    ) -> None:
        buckets, size_buckets, ws_buckets = signature
        self.signature = signature
        self.namespace = namespace
        created: list[Any] = []

        def make(cls: Any, name: str, doc: str, labels: Sequence[str], **kw: Any) -> Any:
            metric = cls(name, doc, labels, namespace=namespace, registry=registry, **kw)
            created.append(metric)
            return metric

        try:
            self.duration: Histogram = make(
                Histogram, "http_server_request_duration_seconds",
                "Duration of HTTP server requests.", _LABELS, buckets=buckets,
            )  # fmt: skip
            self.active: Gauge = make(
                Gauge, "http_server_active_requests",
                "Number of active HTTP server requests.", ("method",),
                multiprocess_mode="livesum",
            )  # fmt: skip
            self.request_size: Histogram = make(
                Histogram, "http_server_request_body_size_bytes",
                "Size of HTTP server request bodies (bytes read by the app).", _LABELS,
                buckets=size_buckets,
            )  # fmt: skip
            self.response_size: Histogram = make(
                Histogram, "http_server_response_body_size_bytes",
                "Size of HTTP server response bodies (bytes sent).", _LABELS,
                buckets=size_buckets,
            )  # fmt: skip
            self.ws_connections: Counter = make(
                Counter, "http_server_websocket_connections",
                "WebSocket connections, by outcome of the handshake (accepted/rejected).",
                ("route", "outcome"),
            )  # fmt: skip
            self.ws_active: Gauge = make(
                Gauge, "http_server_websocket_active_connections",
                "Number of open WebSocket connections.", ("route",),
                multiprocess_mode="livesum",
            )  # fmt: skip
            self.ws_duration: Histogram = make(
                Histogram, "http_server_websocket_connection_duration_seconds",
                "Duration of WebSocket connections, from accept to close.", ("route",),
                buckets=ws_buckets,
            )  # fmt: skip
        except ValueError as exc:
            for metric in created:
                registry.unregister(metric)
            raise ValueError(
                f"namespace={namespace!r}: the registry already holds a metric with one of "
                f"MetricsMiddleware's names ({exc}); choose another namespace or registry"
            ) from None

        self.children: dict[tuple[str, str, int], _Children] = {}
        self.active_children: dict[str, Gauge] = {}
        self.routes: set[str] = set()

    def http_children(self, key: tuple[str, str, int]) -> _Children:
        method, route, status = key
        status_label = str(int(status))  # int() so an HTTPStatus member labels as "200"
        children = (
            self.duration.labels(method, route, status_label),
            self.request_size.labels(method, route, status_label),
            self.response_size.labels(method, route, status_label),
        )
        self.children[key] = children
        return children

    def active_child(self, method: str) -> Gauge:
        child = self.active.labels(method)
        self.active_children[method] = child
        return child


_SHARED: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, _Collectors]] = (
    weakref.WeakKeyDictionary()
)
_SHARED_LOCK = threading.Lock()


def _collectors_for(
    registry: CollectorRegistry,
    namespace: str,
    signature: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]],
) -> _Collectors:
    with _SHARED_LOCK:
        by_namespace = _SHARED.setdefault(registry, {})
        existing = by_namespace.get(namespace)
        if existing is not None:
            if existing.signature != signature:
                raise ValueError(
                    f"namespace={namespace!r}: another MetricsMiddleware on this registry "
                    "uses different buckets; instances sharing a registry and namespace "
                    "share their metrics and must use the same buckets, size_buckets and "
                    "websocket_buckets (or use another namespace or registry)"
                )
            return existing
        collectors = _Collectors(registry, namespace, signature)
        by_namespace[namespace] = collectors
        return collectors


def _exemplar() -> dict[str, str] | None:
    """``{"trace_id": ...}`` for the current span when it is valid and sampled."""
    ctx = get_current_span().get_span_context()
    if ctx.is_valid and ctx.trace_flags.sampled:
        return {"trace_id": format(ctx.trace_id, "032x")}
    return None


class MetricsMiddleware:
    """Record Prometheus metrics for every HTTP request and WebSocket connection.

    Series (each name prefixed with ``namespace + "_"`` when set):

    - ``http_server_request_duration_seconds`` (histogram; ``method``,
      ``route``, ``status_code``): from the request's arrival to the last body
      message sent (background work after the response is not counted).
    - ``http_server_active_requests`` (gauge; ``method``): requests in the
      app right now; multiprocess mode sums live workers (``livesum``).
    - ``http_server_request_body_size_bytes`` /
      ``http_server_response_body_size_bytes`` (histograms; same labels):
      bytes actually read by the app and actually sent, not ``Content-Length``.
    - ``http_server_websocket_connections_total`` (counter; ``route``,
      ``outcome`` = ``accepted``/``rejected``),
      ``http_server_websocket_active_connections`` (gauge; ``route``) and
      ``http_server_websocket_connection_duration_seconds`` (histogram; ``route``).

    ``route`` is the template the framework matched (``/items/{item_id}``),
    read from the scope after the app routed, or what ``route_resolver``
    returns; requests without a route share ``unmatched_route``.  ``method``
    outside the standard set is ``_OTHER``.

    Args:
        app: The ASGI application to wrap.
        registry: The :class:`~prometheus_client.CollectorRegistry` to register
            with.  Instances on the same registry and namespace share one set of
            metrics; they must use the same buckets (else :class:`ValueError`).
        namespace: Prefix for every metric name (``"shop"`` gives
            ``shop_http_server_request_duration_seconds``).
        buckets: Duration buckets in seconds (OpenTelemetry's recommendation).
        group_paths: ``True``: ``route`` is the route template.  ``False``: it
            is the raw request path, but only for requests the app routed
            (unmatched paths still share ``unmatched_route``), and at most
            ``max_routes`` values.
        exclude_paths: Paths (exact, or globs such as ``"/static/*"``) not measured.
        metrics_path: When set, the middleware answers this path itself with
            :func:`metrics_app` on ``registry``.
        size_buckets: Body-size buckets in bytes.
        websocket_buckets: WebSocket connection-duration buckets in seconds.
        route_resolver: ``route_resolver(scope) -> str | None`` replacing the
            template look-up; called when the response starts (the app has
            routed).  ``None`` means unmatched.  Errors are logged and treated
            as unmatched.
        unmatched_route: The ``route`` label of unmatched requests.
        max_routes: At most this many distinct ``route`` values; later ones
            are recorded as ``"<overflow>"`` (and logged once).
        exemplars: Attach ``trace_id`` exemplars to duration observations when
            an OpenTelemetry span is active and sampled (visible to scrapers
            that negotiate OpenMetrics).  Ignored in multiprocess mode, which
            prometheus-client does not support exemplars in.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        registry: CollectorRegistry = REGISTRY,
        namespace: str = "",
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        group_paths: bool = True,
        exclude_paths: Iterable[str] = ("/metrics",),
        metrics_path: str | None = None,
        *,
        size_buckets: Sequence[float] = DEFAULT_SIZE_BUCKETS,
        websocket_buckets: Sequence[float] = DEFAULT_WEBSOCKET_BUCKETS,
        route_resolver: RouteResolver | None = None,
        unmatched_route: str = UNMATCHED_ROUTE,
        max_routes: int = 1000,
        exemplars: bool = True,
    ) -> None:
        self.app = asgi3(app)
        if not isinstance(registry, CollectorRegistry):
            raise TypeError(
                f"registry must be a prometheus_client CollectorRegistry, got {registry!r}"
            )
        if not isinstance(namespace, str) or (
            namespace and (namespace[0].isdigit() or not set(namespace) <= _NAMESPACE_CHARS)
        ):
            raise ValueError(f"namespace must be a valid metric name prefix, got {namespace!r}")
        if metrics_path is not None and (
            not isinstance(metrics_path, str) or not metrics_path.startswith("/")
        ):
            raise ValueError(f"metrics_path must be a path starting with '/', got {metrics_path!r}")
        if route_resolver is not None and not callable(route_resolver):
            raise TypeError(f"route_resolver must be callable, got {route_resolver!r}")
        if not isinstance(unmatched_route, str) or not unmatched_route:
            raise ValueError(f"unmatched_route must be a non-empty string, got {unmatched_route!r}")
        if isinstance(max_routes, bool) or not isinstance(max_routes, int) or max_routes < 1:
            raise ValueError(f"max_routes must be a positive int, got {max_routes!r}")
        signature = (
            _check_buckets(buckets, "buckets"),
            _check_buckets(size_buckets, "size_buckets"),
            _check_buckets(websocket_buckets, "websocket_buckets"),
        )
        self._exclude = PathMatcher(exclude_paths, "exclude_paths")
        self._exclude_any = bool(self._exclude)
        self._c = _collectors_for(registry, namespace, signature)
        self._group_paths = bool(group_paths)
        self._resolver = route_resolver
        self._unmatched = unmatched_route
        self._max_routes = max_routes
        multiprocess = self._multiprocess = _multiprocess_enabled()
        if multiprocess:
            _remove_live_gauges_at_exit()
        self._exemplars = bool(exemplars) and not multiprocess
        self._metrics_path = metrics_path
        self._endpoint: ASGIApp | None = None if metrics_path is None else metrics_app(registry)
        self._warned_overflow = False
        self._warned_resolver = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "http":
            path = scope["path"]
            if self._endpoint is not None and path == self._metrics_path:
                if self._exclude_any and self._exclude(path):
                    await self._endpoint(scope, receive, send)
                else:
                    await self._http(scope, receive, send, self._endpoint, path)
                return
            if self._exclude_any and self._exclude(path):
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, self.app, None)
        elif scope_type == "websocket":
            if self._exclude_any and self._exclude(scope["path"]):
                await self.app(scope, receive, send)
                return
            await self._websocket(scope, receive, send)
        elif scope_type == "lifespan" and self._multiprocess:
            await self.app(scope, receive, _forget_worker_on_shutdown(send))
        else:
            await self.app(scope, receive, send)

    def _route(self, scope: Scope) -> str:
        """The bounded ``route`` label for ``scope`` (after the app routed)."""
        if self._resolver is not None:
            try:
                route = self._resolver(scope)
            except Exception:
                if not self._warned_resolver:
                    self._warned_resolver = True
                    logger.exception("route_resolver raised; recording the request as unmatched")
                return self._unmatched
        else:
            route = route_template(scope)
            if route is not None and not self._group_paths:
                route = scope.get("path") or route
        if not route or not isinstance(route, str):
            return self._unmatched
        routes = self._c.routes
        if route in routes:
            return route
        if len(routes) >= self._max_routes:
            if not self._warned_overflow:
                self._warned_overflow = True
                logger.warning(
                    "MetricsMiddleware saw more than max_routes=%d distinct routes; "
                    "recording further ones as %r",
                    self._max_routes,
                    OVERFLOW_ROUTE,
                )
            return OVERFLOW_ROUTE
        routes.add(route)
        return route

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, fixed_route: str | None
    ) -> None:
        c = self._c
        method = scope.get("method") or "GET"
        if method not in _METHODS:
            method = _OTHER
        active = c.active_children.get(method) or c.active_child(method)
        status = 0
        route: str | None = fixed_route
        request_bytes = 0
        response_bytes = 0
        end = 0.0
        disconnected = False
        start_headers: Any = None

        async def receive_counting() -> Message:
            nonlocal request_bytes, disconnected
            message = await receive()
            body = message.get("body")
            if body:
                request_bytes += len(body)
            elif message["type"] == "http.disconnect":
                disconnected = True
            return message

        async def send_counting(message: Message) -> None:
            nonlocal status, route, response_bytes, end, start_headers
            mtype = message["type"]
            if mtype == "http.response.body":
                body = message.get("body")
                if body:
                    response_bytes += len(body)
                await send(message)
                if not message.get("more_body"):
                    end = perf_counter()
                return
            if mtype == "http.response.start":
                status = message["status"]
                start_headers = message.get("headers")
                if route is None:
                    route = self._route(scope)
            elif mtype == "http.response.zerocopysend":
                count = message.get("count")
                response_bytes += (
                    count if isinstance(count, int) else _content_length(start_headers)
                )
            elif mtype == "http.response.pathsend":
                response_bytes += _content_length(start_headers)
            await send(message)
            if mtype in ("http.response.zerocopysend", "http.response.pathsend") and not (
                message.get("more_body")
            ):
                end = perf_counter()

        active.inc()
        start = perf_counter()
        cancelled = False
        try:
            await app(scope, receive_counting, send_counting)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            active.dec()
            if not end:
                end = perf_counter()
            if not status:
                # No response started: the server answers 500, unless the client left.
                status = 499 if disconnected or cancelled else 500
            if route is None:
                route = self._route(scope)
            key = (method, route, status)
            duration, request_size, response_size = c.children.get(key) or c.http_children(key)
            exemplar = _exemplar() if self._exemplars else None
            if exemplar is not None:
                duration.observe(end - start, exemplar)
            else:
                duration.observe(end - start)
            request_size.observe(request_bytes)
            response_size.observe(response_bytes)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        c = self._c
        route = ""
        accepted_at = 0.0
        active: Gauge | None = None

        async def send_watching(message: Message) -> None:
            nonlocal route, accepted_at, active
            if active is None and message["type"] == "websocket.accept":
                route = self._route(scope)
                active = c.ws_active.labels(route)
                active.inc()
                accepted_at = perf_counter()
                c.ws_connections.labels(route, "accepted").inc()
            await send(message)

        try:
            await self.app(scope, receive, send_watching)
        finally:
            if active is not None:
                active.dec()
                c.ws_duration.labels(route).observe(perf_counter() - accepted_at)
            else:
                c.ws_connections.labels(self._route(scope), "rejected").inc()


def _content_length(headers: Any) -> int:
    if headers:
        value = header_value(headers, b"content-length")
        if value is not None and value.isdigit():
            return int(value)
    return 0


# --------------------------------------------------------------------------- exposition

_ALLOW = b"GET, HEAD"
_VARY = b"Accept, Accept-Encoding"
_MAX_ACCEPT = 4096


def _gzip_accepted(value: bytes | None) -> bool:
    """RFC 9110 negotiation: an explicit ``gzip`` wins over ``*``; ``q=0`` refuses."""
    if not value:
        return False
    star = 0.0
    for token, q in parse_qvalues(value):
        if token == "gzip":
            return q > 0
        if token == "*":
            star = q
    return star > 0


def _encoder(accept: bytes | None) -> tuple[Callable[[Any], bytes], str]:
    """prometheus-client's own ``Accept`` negotiation, hardened against hostile values."""
    if accept:
        try:
            encoder, content_type = choose_encoder(accept[:_MAX_ACCEPT].decode("latin-1"))
        except Exception:
            pass  # malformed version/escaping parameters: serve the classic format
        else:
            # The version parameter is echoed back: never reflect odd bytes into a header.
            if content_type.isascii() and content_type.isprintable():
                return encoder, content_type
    return generate_latest, CONTENT_TYPE_PLAIN_0_0_4


def _names(query_string: bytes) -> list[str]:
    """``name[]`` filters from the query string (as prometheus-client's handlers)."""
    if not query_string or b"name" not in query_string:
        return []
    try:
        params = parse_qs(query_string.decode("latin-1"), max_num_fields=100)
    except ValueError:
        return []
    return params.get("name[]", [])


class _MetricsApp:
    """The ASGI app :func:`metrics_app` returns."""

    def __init__(
        self,
        registry: CollectorRegistry,
        multiprocess: bool | None,
        gzip_enabled: bool,
        thread_threshold: float,
    ) -> None:
        self.registry = registry
        self.multiprocess = _multiprocess_enabled() if multiprocess is None else multiprocess
        self.gzip_enabled = gzip_enabled
        self.thread_threshold = thread_threshold
        # Start in a worker thread (one ~65 µs hop) and move inline only once a
        # generation proved cheap, so a large registry never blocks the loop.
        self._inline = False

    def _collect_from(self) -> CollectorRegistry:
        if self.multiprocess:
            # A fresh registry per scrape: the collector reads every worker's files.
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return registry
        return self.registry

    def _render(
        self, encoder: Callable[[Any], bytes], names: list[str], compress: bool
    ) -> tuple[bytes, float]:
        started = perf_counter()
        registry: Any = self._collect_from()
        if names:
            registry = registry.restricted_registry(names)
        output = encoder(registry)
        if compress:
            output = gzip.compress(output, compresslevel=6)
        return output, perf_counter() - started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "lifespan":
            await _lifespan(receive, send)
            return
        if scope_type != "http":
            await refuse_websocket(scope, receive, send, 404)
            return
        method = scope.get("method")
        if method not in ("GET", "HEAD"):
            await send_response(send, 405, b"Method Not Allowed", headers=[(b"allow", _ALLOW)])
            return
        headers = scope.get("headers") or ()
        encoder, content_type = _encoder(header_list(headers, b"accept"))
        compress = self.gzip_enabled and _gzip_accepted(header_list(headers, b"accept-encoding"))
        names = _names(scope.get("query_string") or b"")
        if (self._inline and not self.multiprocess) or not _asyncio_running():
            output, elapsed = self._render(encoder, names, compress)
        else:
            output, elapsed = await asyncio.to_thread(self._render, encoder, names, compress)
        self._inline = elapsed < self.thread_threshold
        raw: Headers = [
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(output)).encode("ascii")),
            (b"vary", _VARY),
            (b"cache-control", b"no-store"),
        ]
        if compress:
            raw.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        body = b"" if method == "HEAD" else output
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _asyncio_running() -> bool:
    """False under another event loop (trio), where generation then runs inline."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _lifespan(receive: Receive, send: Send) -> None:
    """Answer lifespan events so the app can be served on its own."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def metrics_app(
    registry: CollectorRegistry = REGISTRY,
    *,
    multiprocess: bool | None = None,
    disable_compression: bool = False,
    thread_threshold: float = 0.001,
) -> ASGIApp:
    """An ASGI app serving ``registry`` in the Prometheus exposition formats.

    - Classic text format by default; OpenMetrics (with exemplars) when the
      ``Accept`` header asks for ``application/openmetrics-text``.  Malformed
      ``Accept`` values fall back to the text format, never an error.
    - gzip when ``Accept-Encoding`` accepts it (q-values honoured), unless
      ``disable_compression``.
    - ``GET`` and ``HEAD`` only; anything else gets 405 with ``Allow``.
    - ``?name[]=metric`` restricts the output, as prometheus-client's handlers.
    - Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, or
      ``multiprocess=True``): every scrape builds a fresh registry with
      :class:`~prometheus_client.multiprocess.MultiProcessCollector`, so one
      worker reports the total of all workers.  ``registry`` is then not read.
    - Generation runs in a worker thread unless the previous one took less
      than ``thread_threshold`` seconds (1 ms by default; a thread hop costs
      about 65 µs, and 1 ms is roughly 100 samples), so a large registry never
      blocks the event loop.  Multiprocess scrapes read files and always use a
      thread.  ``thread_threshold=0`` always uses a thread.  Under a non-asyncio
      loop (trio) generation runs inline.

    Mount it (``app.mount("/metrics", metrics_app())``), serve it on its own
    (it answers ``lifespan``), or pass ``metrics_path`` to
    :class:`MetricsMiddleware`.
    """
    if not isinstance(registry, CollectorRegistry):
        raise TypeError(f"registry must be a CollectorRegistry, got {registry!r}")
    if isinstance(thread_threshold, bool) or not isinstance(thread_threshold, (int, float)):
        raise TypeError(f"thread_threshold must be a number of seconds, got {thread_threshold!r}")
    if thread_threshold < 0:
        raise ValueError(f"thread_threshold must be >= 0, got {thread_threshold!r}")
    return _MetricsApp(registry, multiprocess, not disable_compression, float(thread_threshold))
