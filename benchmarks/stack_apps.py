"""The full-stack benchmark's apps: one bare FastAPI app and two middleware stacks.

Both stacks wrap the **same** bare app object, so the only difference between
them is the middleware.  Each stack does the same work on the benchmark
request (an allowed ``Origin``, a signed session cookie, ``X-Forwarded-For``
from a trusted proxy, ``Accept-Encoding: ... br ...``):

step: asgi_kit / anchor (outermost first)

- proxy headers: ``ProxyHeadersMiddleware`` / Uvicorn's ``ProxyHeadersMiddleware``
- request id: ``RequestIDMiddleware`` / asgi-correlation-id
- tracing: ``TracingMiddleware`` / opentelemetry-instrumentation-asgi
- access log: ``AccessLogMiddleware`` / no anchor
- metrics: ``MetricsMiddleware`` / starlette-exporter
- CORS: ``CORSMiddleware`` / Starlette's ``CORSMiddleware``
- rate limit: ``RateLimitMiddleware`` + ``MemoryBackend`` / slowapi's ASGI middleware
- sessions: ``SessionMiddleware`` (signed cookie) / Starlette's ``SessionMiddleware``
- compression: ``CompressionMiddleware`` (br q4) / brotli-asgi (br q4)

Uvicorn imports the stacks from here with ``--factory``
(``benchmarks.stack_apps:asgi_kit_stack`` ...), so a server process builds
only the stack it serves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

SECRET = "benchmark-stack-secret"
ORIGIN = "https://app.example.com"
#: Our session cookie and Starlette's live side by side in one ``Cookie`` header.
OURS_COOKIE = "session"
ANCHOR_COOKIE = "st_session"
#: High enough never to trigger during a benchmark (both limiters count every request).
LIMIT = "1000000/minute"
#: Both compressors compress the ~1 KB JSON body (and skip anything under this).
MINIMUM_SIZE = 500
BROTLI_QUALITY = 4
#: Prefix for starlette-exporter's metrics (it keeps them in the default registry).
EXPORTER_PREFIX = "bench_stack"
FORWARDED_FOR = "203.0.113.7"
PROXY = "127.0.0.1"

App = Any

_TAGS = [
    {"id": n, "name": f"tag-{n:02d}", "colour": "#3f7fbf", "weight": n / 7, "active": n % 2 == 0}
    for n in range(12)
]


def bare_app() -> App:
    """A small FastAPI app: ``GET /items/{item_id}`` answers about 1 KB of JSON.

    It reads the session (when a session middleware put one in the scope) and
    reports the client address and scheme it sees, so the sanity check can
    prove that the session and proxy middleware did their work.
    """
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/items/{item_id}")
    async def item(item_id: int, request: Request) -> dict[str, Any]:
        session = request.scope.get("session")
        client = request.client
        return {
            "item_id": item_id,
            "name": f"Item {item_id}",
            "owner": session.get("user") if session is not None else None,
            "client": client.host if client else None,
            "scheme": request.url.scheme,
            "description": "A benchmark item with a body big enough to be worth compressing.",
            "tags": _TAGS,
        }

    return app


# -- tracing ----------------------------------------------------------------


class _Counter:
    """What the dropping span processor saw (for the sanity check only)."""

    def __init__(self) -> None:
        self.ended = 0
        self.last: Any = None


def sdk_provider() -> tuple[Any, _Counter]:
    """An SDK ``TracerProvider`` whose only processor drops every span.

    Both stacks get the same provider object explicitly; the global provider
    is never set, so the no-SDK scenario keeps the API's default.
    """
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

    counter = _Counter()

    class Drop(SpanProcessor):
        """Keeps no span: the figure is the instrumentation's cost, not an exporter's."""

        def on_end(self, span: ReadableSpan) -> None:
            counter.ended += 1
            counter.last = span

    provider = TracerProvider()
    provider.add_span_processor(Drop())
    return provider, counter


class DroppingLogger:
    """A structlog-style logger that accepts every event and drops it.

    The access log still builds every field (method, path, status, duration,
    bytes, client, request id, trace id, route) and makes the call, so that
    work is measured; only the sink's cost (rendering, I/O) is left out, as
    it would be for any log line.  (A structlog logger filtering the level
    out would be cheaper still: the access log then skips building fields.)
    """

    def __init__(self) -> None:
        self.events = 0  # for the sanity check
        self.last: dict[str, Any] = {}

    def _drop(self, event: str, **fields: Any) -> None:
        self.events += 1
        self.last = fields

    debug = info = warning = error = critical = exception = _drop


# -- the stacks -------------------------------------------------------------


@dataclass
class Stack:
    """A built stack and the objects the sanity check inspects."""

    app: App
    registry: Any = None
    spans: _Counter | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: The asgi_kit stack, innermost first (wrapping order), by short name.
LAYERS = (
    "compression",
    "sessions",
    "ratelimit",
    "cors",
    "metrics",
    "accesslog",
    "tracing",
    "requestid",
    "proxy",
)


def build_asgi_kit(
    app: App,
    tracer_provider: Any = None,
    spans: _Counter | None = None,
    without: frozenset[str] = frozenset(),
) -> Stack:
    """The nine asgi_kit middleware in the order of ``docs/stack.md``.

    ``without`` leaves layers out (names from :data:`LAYERS`); only the
    leave-one-out breakdown in :mod:`benchmarks.profile_stack` uses it.
    """
    from prometheus_client import CollectorRegistry

    from asgi_kit.compression import CompressionMiddleware
    from asgi_kit.cors import CORSMiddleware
    from asgi_kit.logging import AccessLogMiddleware, RequestIDMiddleware
    from asgi_kit.metrics import MetricsMiddleware
    from asgi_kit.proxy import ProxyHeadersMiddleware
    from asgi_kit.ratelimit import MemoryBackend, RateLimitMiddleware, Rule
    from asgi_kit.sessions import SessionMiddleware
    from asgi_kit.tracing import TracingMiddleware

    unknown = set(without) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers: {sorted(unknown)}")
    registry = CollectorRegistry()
    logger = DroppingLogger()
    layers: dict[str, Any] = {
        "compression": lambda a: CompressionMiddleware(
            # br first, as brotli-asgi: the same codec on both sides.
            a,
            minimum_size=MINIMUM_SIZE,
            brotli_quality=BROTLI_QUALITY,
            encodings=("br", "gzip"),
        ),
        "sessions": lambda a: SessionMiddleware(a, SECRET, session_cookie=OURS_COOKIE),
        "ratelimit": lambda a: RateLimitMiddleware(a, rules=[Rule(LIMIT)], backend=MemoryBackend()),
        "cors": lambda a: CORSMiddleware(a, allow_origins=[ORIGIN], allow_credentials=True),
        "metrics": lambda a: MetricsMiddleware(a, registry=registry),
        "accesslog": lambda a: AccessLogMiddleware(a, logger=logger),
        "tracing": lambda a: TracingMiddleware(a, tracer_provider=tracer_provider),
        "requestid": lambda a: RequestIDMiddleware(a),
        "proxy": lambda a: ProxyHeadersMiddleware(a, trusted_hosts=[PROXY]),
    }
    for name in LAYERS:
        if name not in without:
            app = layers[name](app)
    return Stack(app, registry=registry, spans=spans, extra={"logger": logger})


class StarletteAppInScope:
    """Sets ``scope["app"]`` for slowapi, which reads ``scope["app"].state.limiter``.

    Only Starlette's own application object sets ``scope["app"]``, inside
    itself; slowapi's ASGI middleware wrapped around the finished app (as every
    other middleware here is) would otherwise fail with ``KeyError: 'app'``.
    One dict assignment, charged to the anchor stack.
    """

    def __init__(self, app: App, starlette_app: App) -> None:
        self.app = app
        self.starlette_app = starlette_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = self.starlette_app
        await self.app(scope, receive, send)


def build_anchor(app: App, tracer_provider: Any = None, spans: _Counter | None = None) -> Stack:
    """The same stack from the middleware users pick today (no access log: no anchor)."""
    from asgi_correlation_id import CorrelationIdMiddleware
    from brotli_asgi import BrotliMiddleware
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from prometheus_client import REGISTRY
    from slowapi import Limiter
    from slowapi.middleware import SlowAPIASGIMiddleware
    from slowapi.util import get_remote_address
    from starlette.middleware.cors import CORSMiddleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette_exporter import PrometheusMiddleware
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    starlette_app = app
    # slowapi finds its limiter on the app, so every anchor stack around this
    # app shares one.  That matters: limits' memory storage starts a new
    # threading.Timer every 10 ms while it holds counters, and a second,
    # orphaned limiter would keep a second timer chain taking the GIL.
    limiter = getattr(starlette_app.state, "limiter", None)
    if limiter is None:
        limiter = Limiter(key_func=get_remote_address, default_limits=[LIMIT], headers_enabled=True)
        starlette_app.state.limiter = limiter
    # brotli-asgi falls back to gzip itself (through Starlette's gzip
    # responder), so it is the whole compression step: stacking Starlette's
    # GZipMiddleware on top would only re-scan an already encoded response.
    app = BrotliMiddleware(app, quality=BROTLI_QUALITY, minimum_size=MINIMUM_SIZE)
    app = SessionMiddleware(app, SECRET, session_cookie=ANCHOR_COOKIE)
    app = SlowAPIASGIMiddleware(app)
    app = StarletteAppInScope(app, starlette_app)
    app = CORSMiddleware(app, allow_origins=[ORIGIN], allow_credentials=True)
    app = PrometheusMiddleware(app, app_name="bench", prefix=EXPORTER_PREFIX)
    # One SERVER span per request, as TracingMiddleware makes (the default
    # would add an INTERNAL span per receive and per send message).
    app = OpenTelemetryMiddleware(
        app, tracer_provider=tracer_provider, exclude_spans=["receive", "send"]
    )
    app = CorrelationIdMiddleware(app)
    app = ProxyHeadersMiddleware(app, trusted_hosts=PROXY)
    return Stack(app, registry=REGISTRY, spans=spans, extra={"limiter": limiter})


# -- the request ------------------------------------------------------------


async def _cookie(middleware: App) -> str:
    """Run a "login" through ``middleware`` alone and return the cookie it set."""
    headers: list[tuple[bytes, bytes]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/login",
        "raw_path": b"/login",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": (FORWARDED_FOR, 1234),
        "server": ("api.example.com", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])

    await middleware(scope, receive, send)
    for name, value in headers:
        if name.lower() == b"set-cookie":
            return value.decode("latin-1").split(";", 1)[0]
    raise RuntimeError("the session middleware set no cookie")


async def _login(scope: Any, receive: Any, send: Any) -> None:
    scope["session"]["user"] = "ann"
    scope["session"]["roles"] = ["admin", "editor"]
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def cookie_header() -> bytes:
    """A ``Cookie`` header holding a valid session for both stacks (user ``ann``)."""
    from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

    from asgi_kit.sessions import SessionMiddleware

    async def both() -> list[str]:
        return [
            await _cookie(SessionMiddleware(_login, SECRET, session_cookie=OURS_COOKIE)),
            await _cookie(StarletteSessions(_login, SECRET, session_cookie=ANCHOR_COOKIE)),
            "theme=dark",
        ]

    return "; ".join(asyncio.run(both())).encode()


def request_headers(cookie: bytes) -> list[tuple[bytes, bytes]]:
    """Headers added to the browser headers: Origin, Cookie and the proxy's."""
    return [
        (b"origin", ORIGIN.encode()),
        (b"cookie", cookie),
        (b"x-forwarded-for", FORWARDED_FOR.encode()),
        (b"x-forwarded-proto", b"https"),
    ]


# -- Uvicorn factories (``--factory``) -------------------------------------


def bare() -> App:
    return bare_app()


def asgi_kit_stack() -> App:
    provider, counter = sdk_provider()
    return build_asgi_kit(bare_app(), provider, counter).app


def anchor_stack() -> App:
    provider, counter = sdk_provider()
    return build_anchor(bare_app(), provider, counter).app


def asgi_kit_stack_no_sdk() -> App:
    return build_asgi_kit(bare_app()).app


def anchor_stack_no_sdk() -> App:
    return build_anchor(bare_app()).app


def publish(text: str, out: Path | None) -> int:
    """Print a report, also write it to ``out`` when given; the exit status."""
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    return 0
