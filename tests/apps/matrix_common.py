"""What every framework app of the matrix shares (tests/test_matrix.py).

Each ``matrix_<framework>`` module builds the same small app (a JSON answer
big enough to compress, ``/items/{item_id}``, a session counter, a
rate-limited route) behind the full middleware stack, applied the way
that framework's users apply middleware, in the order of docs/stack.md.

Each app module installs the OpenTelemetry SDK with an in-memory exporter
(``install_sdk()``), and the access log goes to an in-memory logger; both are
served as JSON on ``/inspect``, which is excluded from tracing, metrics,
logging and limits.  Only one app module is imported per server process, so
the global tracer provider and Prometheus registry are not shared between
frameworks.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asgi_kit import (
    AccessLogMiddleware,
    ConditionalGetMiddleware,
    CORSMiddleware,
    CSRFMiddleware,
    MetricsMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RequestIDMiddleware,
    RequestLimitsMiddleware,
    Rule,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TracingMiddleware,
    TrustedHostMiddleware,
)
from asgi_kit.compression import CompressionMiddleware

ORIGIN = "https://app.example"
SECRET_KEY = "matrix-secret-key-not-for-production"
LIMIT = 3
INSPECT_PATH = "/inspect"
#: RequestLimitsMiddleware's body limit in the matrix.
MAX_BODY = 64 * 1024
QUIET_PATHS = ("/metrics", INSPECT_PATH)


def big_payload() -> dict[str, Any]:
    """Well over CompressionMiddleware's minimum_size, and very compressible."""
    return {"items": [{"id": i, "name": f"item {i}", "tags": ["a", "b", "c"]} for i in range(200)]}


class MemoryLogger:
    """A structlog-style logger that keeps the access-log events in memory."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _log(self, level: str, event: str, **fields: Any) -> None:
        fields.pop("exc_info", None)
        self.events.append({"level": level, "event": event, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._log("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("error", event, **fields)

    def critical(self, event: str, **fields: Any) -> None:
        self._log("critical", event, **fields)


exporter = InMemorySpanExporter()
access_logger = MemoryLogger()


def install_sdk() -> None:
    """Install the OpenTelemetry SDK globally, exporting to ``exporter``.

    Called by each app module (the server process), never on import here, so
    the tests can import this module without an SDK in the test process.
    """
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def inspect_data() -> dict[str, Any]:
    """Finished spans and access-log events, as JSON-friendly data."""
    return {
        "spans": [
            {
                "name": span.name,
                "kind": span.kind.name,
                "trace_id": f"{span.context.trace_id:032x}",
                "status": span.status.status_code.name,
                "attributes": {k: _jsonable(v) for k, v in (span.attributes or {}).items()},
            }
            for span in exporter.get_finished_spans()
        ],
        "log": [{k: _jsonable(v) for k, v in e.items()} for e in access_logger.events],
    }


# Options of each middleware, shared by every framework (Django's ASGI_KIT
# setting takes the same dicts).
OPTIONS: dict[str, dict[str, Any]] = {
    "ProxyHeadersMiddleware": {"trusted_hosts": ["127.0.0.1"]},
    "RequestIDMiddleware": {},
    "TracingMiddleware": {"excluded_paths": list(QUIET_PATHS)},
    "AccessLogMiddleware": {"logger": access_logger, "exclude_paths": list(QUIET_PATHS)},
    "MetricsMiddleware": {"metrics_path": "/metrics", "exclude_paths": list(QUIET_PATHS)},
    "TrustedHostMiddleware": {"allowed_hosts": ["127.0.0.1", "localhost", "testserver"]},
    "SecurityHeadersMiddleware": {"content_security_policy": {"default-src": "'self'"}},
    "CORSMiddleware": {
        "allow_origins": [ORIGIN],
        "allow_methods": ["GET", "POST"],
        "allow_headers": ["x-matrix"],
        "allow_credentials": True,
    },
    "CSRFMiddleware": {"trusted_origins": [ORIGIN]},
    "RequestLimitsMiddleware": {
        "max_body_size": MAX_BODY,
        "timeout": 10,
        "max_concurrency": 50,
        "max_queue": 100,
        "queue_timeout": 5,
        "exclude_paths": list(QUIET_PATHS),
    },
    "RateLimitMiddleware": {"rules": [Rule(f"{LIMIT}/minute", path="/limited")]},
    "SessionMiddleware": {"secret_key": SECRET_KEY},
    "CompressionMiddleware": {"minimum_size": 500},
    "ConditionalGetMiddleware": {},
}

# Outermost first (docs/stack.md); wrapping and add_middleware go in reverse.
ORDER = (
    "ProxyHeadersMiddleware",
    "RequestIDMiddleware",
    "TracingMiddleware",
    "AccessLogMiddleware",
    "MetricsMiddleware",
    "TrustedHostMiddleware",
    "SecurityHeadersMiddleware",
    "CORSMiddleware",
    "CSRFMiddleware",
    "RequestLimitsMiddleware",
    "RateLimitMiddleware",
    "SessionMiddleware",
    "ConditionalGetMiddleware",
    "CompressionMiddleware",
)

CLASSES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        ProxyHeadersMiddleware,
        RequestIDMiddleware,
        TracingMiddleware,
        AccessLogMiddleware,
        MetricsMiddleware,
        TrustedHostMiddleware,
        SecurityHeadersMiddleware,
        CORSMiddleware,
        CSRFMiddleware,
        RequestLimitsMiddleware,
        RateLimitMiddleware,
        SessionMiddleware,
        ConditionalGetMiddleware,
        CompressionMiddleware,
    )
}


Stack = list[tuple[type[Any], dict[str, Any]]]


def stack(options: dict[str, dict[str, Any]] | None = None) -> Stack:
    """``(class, options)`` pairs, outermost first; ``options`` overrides per class."""
    merged = {name: {**OPTIONS[name], **(options or {}).get(name, {})} for name in ORDER}
    return [(CLASSES[name], merged[name]) for name in ORDER]
