"""The full asgi_kit stack around a small raw-ASGI app.

Run it with ``make demo`` (or ``python examples/full_stack.py``) and try the
URLs it prints.  Every middleware the toolkit ships is applied, in the order
``docs/stack.md`` recommends, with in-memory backends; set ``REDIS_URL`` to
keep rate limits and sessions in Redis instead (the ``demo`` extra has the
client).  ``uvicorn full_stack:app --app-dir examples --no-proxy-headers``
serves the same app.
"""

from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_app import demo_app

from asgi_kit import (
    AccessLogMiddleware,
    CompressionMiddleware,
    ConditionalGetMiddleware,
    CORSMiddleware,
    CSRFMiddleware,
    MemoryStore,
    MetricsMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RedisStore,
    RequestIDMiddleware,
    RequestLimitsMiddleware,
    Rule,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TracingMiddleware,
    TrustedHostMiddleware,
)
from asgi_kit.ratelimit import MemoryBackend, RedisBackend

HOST = os.environ.get("DEMO_HOST", "127.0.0.1")
PORT = int(os.environ.get("DEMO_PORT", "8000"))
REDIS_URL = os.environ.get("REDIS_URL")
SECRET = os.environ.get("DEMO_SESSION_SECRET", "demo-only-secret-change-me")
FRONTEND = "http://localhost:5173"
ORIGINS = [f"http://{HOST}:{PORT}", FRONTEND]


def build(app=demo_app):  # type: ignore[no-untyped-def]
    """Wrap ``app`` inside out: the last wrapper is the outermost."""
    app = CompressionMiddleware(app, minimum_size=200)
    # Outside compression: each coding gets its own tag and its 304 keeps Vary.
    app = ConditionalGetMiddleware(app, exclude_paths=["/stream", "/events"])
    app = SessionMiddleware(
        app,
        secret_key=SECRET,
        store=RedisStore(REDIS_URL) if REDIS_URL else MemoryStore(),
    )
    app = RateLimitMiddleware(
        app,
        rules=[Rule("5/minute", path="/limited", algorithm="fixed_window"), Rule("600/minute")],
        backend=RedisBackend(REDIS_URL) if REDIS_URL else MemoryBackend(),
        exempt_paths=["/health", "/metrics"],
    )
    # Cheap refusals before sessions and rate limits do any work; inside CORS,
    # metrics and the access log, so a 413/503/504 is readable, counted and logged.
    app = RequestLimitsMiddleware(
        app,
        max_body_size=1024 * 1024,
        timeout=30,
        max_concurrency=100,
        max_queue=200,
        queue_timeout=10,
        exclude_paths=["/health", "/metrics"],
    )
    # Cross-site writes only from the front-ends CORS lets read the answers.
    app = CSRFMiddleware(app, trusted_origins=ORIGINS)
    app = CORSMiddleware(
        app,
        allow_origins=ORIGINS,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "X-Request-ID"],
        allow_credentials=True,
        expose_headers=["X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining"],
    )
    app = SecurityHeadersMiddleware(app, content_security_policy={"default-src": "'self'"})
    app = TrustedHostMiddleware(app, allowed_hosts=[HOST, "localhost", "127.0.0.1", "[::1]"])
    app = MetricsMiddleware(app, metrics_path="/metrics")
    app = AccessLogMiddleware(app, exclude_paths=["/health", "/metrics"])
    app = TracingMiddleware(app, excluded_paths=["/health", "/metrics"])
    app = RequestIDMiddleware(app)
    return ProxyHeadersMiddleware(app, trusted_hosts=["127.0.0.1"])


app = build()


def _python() -> str:
    """This interpreter, as a path that works from the current directory.

    ``make demo`` runs the virtualenv's Python, which has ``websockets``; a
    bare ``python`` on the user's PATH may not.
    """
    here = os.path.relpath(sys.executable)
    return here if not here.startswith("..") else sys.executable


URLS = [
    ("JSON (brotli/gzip)", f"curl -s --compressed -i http://{HOST}:{PORT}/"),
    ("streamed text", f"curl -sN --compressed http://{HOST}:{PORT}/stream"),
    ("Server-Sent Events", f"curl -sN http://{HOST}:{PORT}/events"),
    ("session counter", f"curl -s -c /tmp/jar -b /tmp/jar http://{HOST}:{PORT}/session"),
    (
        "rate limit (5/min)",
        f"for i in 1 2 3 4 5 6; do curl -si http://{HOST}:{PORT}/limited | head -1; done",
    ),
    (
        "CORS preflight",
        f"curl -si -X OPTIONS http://{HOST}:{PORT}/ -H 'Origin: {FRONTEND}'"
        " -H 'Access-Control-Request-Method: PUT'",
    ),
    (
        "ETag, then 304",
        f"tag=$(curl -s -o /dev/null -D - http://{HOST}:{PORT}/ | grep -i '^etag' | cut -d' ' -f2"
        f" | tr -d '\\r'); curl -si http://{HOST}:{PORT}/ -H \"If-None-Match: $tag\" | head -1",
    ),
    (
        "body limit (413)",
        f"head -c 2000000 /dev/zero | curl -si --data-binary @- http://{HOST}:{PORT}/ | head -1",
    ),
    ("request id", f"curl -si http://{HOST}:{PORT}/health -H 'X-Request-ID: my-id-123'"),
    (
        "CSRF refusal",
        f"curl -si -X PUT http://{HOST}:{PORT}/session -H 'Sec-Fetch-Site: cross-site'",
    ),
    ("unknown host", f"curl -si http://{HOST}:{PORT}/ -H 'Host: evil.example'"),
    ("Prometheus metrics", f"curl -s http://{HOST}:{PORT}/metrics"),
    ("WebSocket echo", f"{_python()} -m websockets ws://{HOST}:{PORT}/ws"),
]


def main() -> None:
    import uvicorn

    print(
        f"asgi_kit demo on http://{HOST}:{PORT} ({'Redis' if REDIS_URL else 'in-memory'} "
        "backends). Try:"
    )
    for label, command in URLS:
        print(f"  {label:<20} {command}")
    sys.stdout.flush()
    # Uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal
    # with the handlers that were installed before it started: with these,
    # that ends the demo with status 0 instead of killing it by the signal
    # (which ``make`` reports as "make: *** [demo] Terminated").
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        # AccessLogMiddleware logs every request: Uvicorn's own access log would repeat it.
        uvicorn.run(
            app, host=HOST, port=PORT, log_level="info", proxy_headers=False, access_log=False
        )
    except KeyboardInterrupt:  # Ctrl-C, re-raised by Uvicorn after its shutdown
        pass
    print("asgi_kit demo stopped.")


if __name__ == "__main__":
    main()
