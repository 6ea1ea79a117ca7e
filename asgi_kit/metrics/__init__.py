"""Prometheus metrics for any ASGI app: :class:`MetricsMiddleware` and :func:`metrics_app`.

Series follow the OpenTelemetry HTTP semantic conventions, named the
Prometheus way (``http.server.request.duration`` becomes
``http_server_request_duration_seconds``).  The ``route`` label is the route
template the framework matched (read from the scope after the app routed, never
re-matched), so label cardinality stays bounded under path scans.

The package holds the middleware (:mod:`.middleware`), the exposition app
(:mod:`.exposition`) and the multiprocess-mode lifecycle (:mod:`.multiprocess`).

Example::

    from asgi_kit.metrics import MetricsMiddleware

    app = MetricsMiddleware(app, metrics_path="/metrics")
"""

from __future__ import annotations

from .exposition import metrics_app
from .middleware import (
    ANSWERED_ROUTE,
    DEFAULT_BUCKETS,
    DEFAULT_SIZE_BUCKETS,
    DEFAULT_WEBSOCKET_BUCKETS,
    OVERFLOW_ROUTE,
    SUBMILLISECOND_BUCKETS,
    UNMATCHED_ROUTE,
    MetricsMiddleware,
    RouteResolver,
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
    "RouteResolver",
    "metrics_app",
]
