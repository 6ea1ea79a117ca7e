"""The Prometheus exposition endpoint: :func:`metrics_app`."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from time import perf_counter
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from asgi_kit._http import header_list, parse_qvalues, refuse_websocket, send_response
from asgi_kit.types import ASGIApp, Headers, Receive, Scope, Send

from .multiprocess import _multiprocess_enabled

__all__ = ["metrics_app"]
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
