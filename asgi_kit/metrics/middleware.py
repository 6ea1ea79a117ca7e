"""Prometheus metrics for every request: :class:`MetricsMiddleware`.

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
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from time import perf_counter
from typing import Any

from opentelemetry.trace import get_current_span
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from asgi_kit._http import (
    PathMatcher,
    asgi3,
)
from asgi_kit._observer import OTHER_METHOD, HTTPObserver, WebSocketObserver
from asgi_kit._observer import known_methods as known_methods_of
from asgi_kit._plumbing.options import check_positive_int, check_str, check_type
from asgi_kit._routes import answered_early, resolve_route, route_template
from asgi_kit.types import AnyASGIApp, ASGIApp, Message, Receive, Scope, Send

from .exposition import metrics_app
from .multiprocess import (
    _forget_worker_on_shutdown,
    _multiprocess_enabled,
    _remove_live_gauges_at_exit,
)

__all__ = [
    "ANSWERED_ROUTE",
    "DEFAULT_BUCKETS",
    "DEFAULT_SIZE_BUCKETS",
    "DEFAULT_WEBSOCKET_BUCKETS",
    "OVERFLOW_ROUTE",
    "SUBMILLISECOND_BUCKETS",
    "UNMATCHED_ROUTE",
    "MetricsMiddleware",
]

logger = logging.getLogger("asgi_kit.metrics")

#: OpenTelemetry's recommended buckets for ``http.server.request.duration`` (seconds).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
#: Duration buckets for services answering in well under a millisecond: 100 us
#: to 5 s, densest between 100 us and 2.5 ms where their percentiles fall.
SUBMILLISECOND_BUCKETS: tuple[float, ...] = (
    0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.0025,
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
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
#: ``route`` label of requests a middleware answered before the app routed them,
#: when neither the route they were headed for nor the middleware's name is known.
ANSWERED_ROUTE = "<middleware>"
#: ``route`` label once ``max_routes`` distinct routes have been seen.
OVERFLOW_ROUTE = "<overflow>"

_LABELS = ("method", "route", "status_code")
_NAMESPACE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:")

RouteResolver = Callable[[Scope], "str | None"]
_Children = tuple[Histogram, Histogram, Histogram]


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
    outside the known set is ``_OTHER``; ``status_code`` follows the shared
    rules of :mod:`asgi_kit._observer` (499 when the client left before any
    response, 500 when the app never answered or sent an unusable start).

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
        known_methods: Methods labelled as themselves; any other (including
            a known one in another case, such as ``get``) is ``_OTHER``, as in
            the span and the access log.  ``None`` reads
            ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` or uses the
            semantic-convention list.
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
        known_methods: Iterable[str] | None = None,
    ) -> None:
        self.app = asgi3(app)
        if not isinstance(registry, CollectorRegistry):
            raise TypeError(
                f"registry must be a prometheus_client CollectorRegistry, got {registry!r}"
            )
        check_type("namespace", namespace, str, "a str")
        if namespace and (namespace[0].isdigit() or not set(namespace) <= _NAMESPACE_CHARS):
            raise ValueError(f"namespace must be a valid metric name prefix, got {namespace!r}")
        if metrics_path is not None and not check_str("metrics_path", metrics_path).startswith("/"):
            raise ValueError(f"metrics_path must be a path starting with '/', got {metrics_path!r}")
        if route_resolver is not None and not callable(route_resolver):
            raise TypeError(f"route_resolver must be callable, got {route_resolver!r}")
        check_str("unmatched_route", unmatched_route)
        check_positive_int("max_routes", max_routes)
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
        self._known_methods = known_methods_of(known_methods)
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
            answered = answered_early(scope)
            if answered is None:
                return self._unmatched
            # Answered by a middleware before the app routed (a 429, a CORS
            # preflight): the route it was headed for, else the middleware's
            # name; never <unmatched>, which stays for paths no route serves.
            route = resolve_route(scope) or (f"<{answered}>" if answered else ANSWERED_ROUTE)
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
        if method not in self._known_methods:
            method = OTHER_METHOD
        active = c.active_children.get(method) or c.active_child(method)
        # A route_resolver is documented to run when the response starts; the
        # scope's template reads the same at the end, without a hook per request.
        observer: HTTPObserver = (
            HTTPObserver(receive, send)
            if self._resolver is None or fixed_route is not None
            else _RouteObserver(receive, send, self, scope)
        )
        active.inc()
        start = perf_counter()
        try:
            await app(scope, observer.receive, observer.send)
        except asyncio.CancelledError:
            observer.cancelled()
            raise
        except Exception as exc:
            observer.raised(exc)
            raise
        finally:
            active.dec()
            end = observer.completed_at or perf_counter()
            if fixed_route is not None:
                route = fixed_route
            elif type(observer) is _RouteObserver and observer.route is not None:
                route = observer.route
            else:
                route = self._route(scope)
            key = (method, route, observer.final_status())
            duration, request_size, response_size = c.children.get(key) or c.http_children(key)
            exemplar = _exemplar() if self._exemplars else None
            if exemplar is not None:
                duration.observe(end - start, exemplar)
            else:
                duration.observe(end - start)
            request_size.observe(observer.request_bytes)
            response_size.observe(observer.response_bytes)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        c = self._c
        observer = _WebSocketRouteObserver(receive, send, self, scope)
        try:
            await observer.run(self.app, scope)
        finally:
            active = observer.active
            if active is not None:
                active.dec()
                c.ws_duration.labels(observer.route).observe(perf_counter() - observer.accepted_at)
            else:
                c.ws_connections.labels(self._route(scope), "rejected").inc()


class _RouteObserver(HTTPObserver):
    """Calls the ``route_resolver`` when the response starts (the app has routed)."""

    __slots__ = ("middleware", "route", "scope")

    def __init__(
        self, receive: Receive, send: Send, middleware: MetricsMiddleware, scope: Scope
    ) -> None:
        super().__init__(receive, send)
        self.middleware = middleware
        self.scope = scope
        self.route: str | None = None

    def started(self, message: Message) -> Message:
        self.route = self.middleware._route(self.scope)
        return message


class _WebSocketRouteObserver(WebSocketObserver):
    """Counts the connection under its route once the app accepts it."""

    __slots__ = ("active", "middleware", "route", "scope")

    def __init__(
        self, receive: Receive, send: Send, middleware: MetricsMiddleware, scope: Scope
    ) -> None:
        super().__init__(receive, send)
        self.middleware = middleware
        self.scope = scope
        self.route = ""
        self.active: Gauge | None = None

    def accepting(self) -> None:
        c = self.middleware._c
        self.route = route = self.middleware._route(self.scope)
        self.active = active = c.ws_active.labels(route)
        active.inc()
        c.ws_connections.labels(route, "accepted").inc()
