"""The framework x server matrix: the full middleware stack, end to end.

For raw ASGI, Starlette, FastAPI, Litestar and Django (ASGI) under Uvicorn,
Hypercorn, Daphne and Granian, and for Django under WSGI (Django's test client), one
server start checks: a CORS preflight, a compressed JSON answer, a session
round trip, a 429 after the limit, a span named after the route template and
a ``/metrics`` series with the route label, security headers (HSTS once the
proxy says https), a cross-site POST refused, an unknown Host refused, a 413
for an oversized body and a 304 for a conditional GET (plain and compressed).
Along the way it checks that the
stack works together: proxy headers reach the limiter, the traces and the
access log; the request id and CORS headers are on answers the inner
middleware give themselves (429, preflight) and on a view's 500.

The apps are in ``tests/apps/matrix_*.py``; the stack's options and order
(docs/stack.md) in ``tests/apps/matrix_common.py``.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import brotli
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from asgi_kit import RequestIDMiddleware, TracingMiddleware
from asgi_kit._http import send_response
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http
from ._support.servers import LiveServerFactory, run_python
from .apps.matrix_common import LIMIT, MAX_BODY, ORIGIN, big_payload


@dataclass(frozen=True)
class Target:
    """One framework's app and what it reports as the ``/items/{id}`` route."""

    app: str
    item_route: str
    env: Mapping[str, str] | None = None


TARGETS = {
    "raw": Target("tests.apps.matrix_raw:app", "/items/{item_id}"),
    "starlette": Target("tests.apps.matrix_starlette:app", "/items/{item_id}"),
    "fastapi": Target("tests.apps.matrix_fastapi:app", "/items/{item_id}"),
    "litestar": Target("tests.apps.matrix_litestar:app", "/items/{item_id}"),
    "django": Target(
        "tests.apps.matrix_django:application",
        "/items/<int:pk>",
        env={"DJANGO_SETTINGS_MODULE": "tests.apps.matrix_django_settings"},
    ),
}


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes  # as on the wire: not decompressed

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)


class Client(Protocol):
    """A cookie-keeping client: httpx over a socket, or Django's test client."""

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Answer:
        """Send one request (with ``content`` as its body) and return the raw answer."""


class HttpxClient:
    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=10)

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Answer:
        # Default Accept-Encoding off, so only the checks that ask get compression.
        sent = {"accept-encoding": "identity", **(headers or {})}
        with self._client.stream(method, path, headers=sent, content=content) as response:
            raw = b"".join(response.iter_raw())
        return Answer(response.status_code, response.headers, raw)

    def close(self) -> None:
        self._client.close()


class DjangoClient:
    """Django's test client: the WSGI handler, so the adapters bridge with asgiref."""

    def __init__(self) -> None:
        from django.test import Client as TestClient

        # A view that raises becomes a 500 response, as under a real WSGI server.
        self._client = TestClient(raise_request_exception=False)

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Answer:
        # Django's WSGI test client sends no Host header (real servers do, and
        # TrustedHostMiddleware refuses a request without one).
        sent = {"host": "testserver", **(headers or {})}
        response = self._client.generic(
            method, path, content or "", "application/octet-stream", headers=sent
        )
        body = response.content  # the matrix's views do not stream
        # Django keeps cookies apart from the headers until the handler sends them.
        items = [*response.headers.items()]
        items += [("set-cookie", m.OutputString()) for m in response.cookies.values()]
        return Answer(response.status_code, httpx.Headers(items), body)


def decode(answer: Answer) -> bytes:
    encoding = answer.header("content-encoding")
    if encoding == "br":
        return bytes(brotli.decompress(answer.body))
    if encoding == "gzip":
        return gzip.decompress(answer.body)
    raise AssertionError(f"not compressed: content-encoding={encoding!r}")


def tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


# --------------------------------------------------------------------------- the checks


def check_preflight(client: Client) -> None:
    answer = client.request(
        "OPTIONS",
        "/items/7",
        {
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "X-Matrix",
        },
    )
    assert answer.status == 200, answer
    assert answer.header("access-control-allow-origin") == ORIGIN
    assert answer.header("access-control-allow-credentials") == "true"
    assert "post" in tokens(answer.header("access-control-allow-methods"))
    assert "x-matrix" in tokens(answer.header("access-control-allow-headers"))
    assert answer.header("x-request-id")

    refused = client.request(
        "OPTIONS",
        "/items/7",
        {"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert refused.header("access-control-allow-origin") is None


def check_compressed_json(client: Client) -> int:
    """Returns the bytes sent on the wire for ``/``, which the metrics must report."""
    answer = client.request("GET", "/", {"accept-encoding": "br, gzip", "origin": ORIGIN})
    assert answer.status == 200, answer
    assert answer.header("content-encoding") in ("br", "gzip")
    assert "accept-encoding" in tokens(answer.header("vary"))
    body = decode(answer)
    assert len(answer.body) < len(body)
    assert json.loads(body) == big_payload()
    # An actual (non-preflight) CORS request to the same response.
    assert answer.header("access-control-allow-origin") == ORIGIN
    assert answer.header("x-request-id")

    gzip_only = client.request("GET", "/", {"accept-encoding": "gzip"})
    assert gzip_only.header("content-encoding") == "gzip"
    assert json.loads(decode(gzip_only)) == big_payload()

    # The access log sits outside CompressionMiddleware: it logs the
    # compressed (on-the-wire) size.
    sizes = {answer.header("x-request-id"): len(answer.body)}
    sizes[gzip_only.header("x-request-id")] = len(gzip_only.body)

    def logged(data: dict[str, Any]) -> dict[Any, Any]:
        return {
            e["request_id"]: e["response_bytes"]
            for e in data["log"]
            if e.get("request_id") in sizes
        }

    assert logged(_inspect(client, lambda data: len(logged(data)) == 2)) == sizes
    return len(answer.body) + len(gzip_only.body)


def check_session(client: Client) -> None:
    first = client.request("GET", "/counter")
    assert first.status == 200, first
    assert first.json() == {"count": 1}
    assert first.header("set-cookie")
    assert client.request("GET", "/counter").json() == {"count": 2}


def check_rate_limit(client: Client) -> None:
    # The client address comes from X-Forwarded-For (the peer is a trusted
    # proxy), so the limit applies per forwarded client.
    heavy = {"x-forwarded-for": "203.0.113.9", "origin": ORIGIN}
    statuses = [client.request("GET", "/limited", heavy).status for _ in range(LIMIT)]
    assert statuses == [200] * LIMIT
    limited = client.request("GET", "/limited", heavy)
    assert limited.status == 429, limited
    assert int(limited.header("retry-after") or "0") >= 1
    # CORS sits outside the limiter and the request id outside both.
    assert limited.header("access-control-allow-origin") == ORIGIN
    assert limited.header("x-request-id")
    other = client.request("GET", "/limited", {"x-forwarded-for": "203.0.113.10"})
    assert other.status == 200


def _inspect(client: Client, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll ``/inspect`` until ``ready(data)``: spans and log lines end just after the answer."""
    deadline = time.monotonic() + 5
    while True:
        data: dict[str, Any] = client.request("GET", "/inspect").json()
        if ready(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.02)


def check_trace_and_log(client: Client, target: Target) -> None:
    answer = client.request("GET", "/items/42", {"x-forwarded-for": "198.51.100.7"})
    assert answer.status == 200, answer
    assert json.loads(answer.body) == {"id": 42}
    request_id = answer.header("x-request-id")
    assert request_id

    name = f"GET {target.item_route}"

    def ready(data: dict[str, Any]) -> bool:
        spans = [s for s in data["spans"] if s["name"] == name]
        logs = [e for e in data["log"] if e.get("request_id") == request_id]
        return bool(spans) and bool(logs)

    data = _inspect(client, ready)
    spans = [s for s in data["spans"] if s["attributes"].get("url.path") == "/items/42"]
    assert [s["name"] for s in spans] == [name], data["spans"]
    span = spans[0]
    attributes = span["attributes"]
    assert span["kind"] == "SERVER"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["client.address"] == "198.51.100.7"
    assert attributes["http.route"] == target.item_route
    # Excluded paths are never traced.
    quiet = ("/inspect", "/metrics")
    assert not [s for s in data["spans"] if s["attributes"].get("url.path") in quiet]

    (entry,) = [e for e in data["log"] if e.get("request_id") == request_id]
    assert entry["path"] == "/items/42"
    assert entry["status"] == 200
    assert entry["client"] == "198.51.100.7"
    assert entry["trace_id"] == span["trace_id"]
    assert entry["route"] == target.item_route
    assert not [e for e in data["log"] if e.get("path") in quiet]


def check_error(client: Client) -> None:
    """A view that raises: a 500 that still carries CORS and the request id, traced as an error.

    Starlette's ServerErrorMiddleware sits outside the whole stack, so there
    the 500 comes from CORSMiddleware itself (docs/stack.md).
    """
    # Uvicorn closes the connection after an app exception, even once the
    # response is complete; a fresh connection keeps the next request off it.
    answer = client.request("GET", "/boom", {"origin": ORIGIN, "connection": "close"})
    assert answer.status == 500, answer
    assert answer.header("access-control-allow-origin") == ORIGIN
    request_id = answer.header("x-request-id")
    assert request_id

    def ready(data: dict[str, Any]) -> bool:
        return any(e.get("request_id") == request_id for e in data["log"]) and any(
            s["attributes"].get("url.path") == "/boom" for s in data["spans"]
        )

    data = _inspect(client, ready)
    (span,) = [s for s in data["spans"] if s["attributes"].get("url.path") == "/boom"]
    assert span["name"] == "GET /boom"
    assert span["status"] == "ERROR"
    assert span["attributes"]["http.response.status_code"] == 500
    (entry,) = [e for e in data["log"] if e.get("request_id") == request_id]
    assert entry["status"] == 500
    assert entry["level"] == "error"


Series = dict[tuple[str, str, str], float]


def check_metrics(client: Client, target: Target, index_bytes: int) -> None:
    def scrape() -> tuple[Series, Series]:
        answer = client.request("GET", "/metrics")
        assert answer.status == 200, answer
        assert (answer.header("content-type") or "").startswith("text/plain")
        counts: Series = {}
        sizes: Series = {}
        for family in text_string_to_metric_families(answer.body.decode()):
            for sample in family.samples:
                labels = sample.labels
                if sample.name == "http_server_request_duration_seconds_count":
                    counts[labels["method"], labels["route"], labels["status_code"]] = sample.value
                elif sample.name == "http_server_response_body_size_bytes_sum":
                    sizes[labels["method"], labels["route"], labels["status_code"]] = sample.value
        return counts, sizes

    deadline = time.monotonic() + 5
    counts, sizes = scrape()
    while ("GET", target.item_route, "200") not in counts and time.monotonic() < deadline:
        time.sleep(0.02)
        counts, sizes = scrape()
    assert counts.get(("GET", target.item_route, "200")) == 1, counts
    assert counts.get(("GET", "/limited", "200"), 0) >= LIMIT, counts
    assert counts.get(("GET", "/boom", "500")) == 1, counts
    assert [key for key in counts if key[2] == "429"], counts
    # MetricsMiddleware sits outside CompressionMiddleware (docs/stack.md).
    assert sizes.get(("GET", "/", "200")) == index_bytes, sizes
    # Never the raw path as a label, and the scrape endpoint is not counted.
    assert not [key for key in counts if key[1] in ("/items/42", "/metrics", "/inspect")]


PROBE = "/form"


def check_security(client: Client) -> None:
    # A route of its own (GET and POST), so the other checks' counts stay exact.
    plain = client.request("GET", PROBE)
    assert plain.status == 200, plain
    assert plain.header("x-content-type-options") == "nosniff"
    assert plain.header("x-frame-options") == "DENY"
    assert plain.header("content-security-policy") == "default-src 'self'; frame-ancestors 'none'"
    assert plain.header("strict-transport-security") is None
    # ProxyHeadersMiddleware is outermost: the proxy's https reaches the headers.
    secure = client.request("GET", PROBE, {"x-forwarded-proto": "https"})
    assert (secure.header("strict-transport-security") or "").startswith("max-age=31536000")

    forged = client.request(
        "POST", PROBE, {"sec-fetch-site": "cross-site", "origin": "https://evil.example",
                             "accept": "application/json"}
    )  # fmt: skip
    assert forged.status == 403, forged
    assert forged.json()["reason"] == "cross-site"
    # Answered inside the observability and header middleware: both are on it.
    assert forged.header("x-request-id")
    assert forged.header("x-frame-options") == "DENY"
    for headers in (
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "cross-site", "origin": ORIGIN},  # trusted
        {},  # not a browser
    ):
        answer = client.request("POST", PROBE, headers)
        assert answer.status == 200, (headers, answer)
        assert answer.json() == {"method": "POST"}

    assert client.request("GET", PROBE, {"host": "evil.example"}).status == 400


def check_body_limit(client: Client) -> None:
    """RequestLimitsMiddleware refuses a body over the limit before the app runs.

    A GET with a body: Litestar runs middleware only for a method its route
    takes (a POST would get Litestar's 405 first), and the limit must hold
    whatever the method.
    """
    answer = client.request(
        "GET",
        "/items/7",
        {"origin": ORIGIN, "content-type": "application/octet-stream", "connection": "close"},
        b"x" * (MAX_BODY + 1),
    )
    assert answer.status == 413, answer
    assert answer.json() == {"detail": "Request body too large"}
    # CORS sits outside the limits, the request id outside everything.
    assert answer.header("access-control-allow-origin") == ORIGIN
    assert answer.header("x-request-id")


def check_conditional(client: Client) -> None:
    """ETags on complete responses and 304s, identity and compressed."""
    first = client.request("GET", "/items/5")
    assert first.status == 200, first
    etag = first.header("etag")
    assert etag and etag.startswith('"'), first.headers
    again = client.request("GET", "/items/5", {"if-none-match": etag})
    assert again.status == 304, again
    assert again.body == b""
    assert again.header("etag") == etag
    assert again.header("content-type") is None
    assert again.header("x-request-id")
    # CompressionMiddleware sits inside (docs/conditional.md): the compressed
    # body gets a weak tag of its own, which matches when the client sends it
    # back, and the 304 keeps the 200's Vary for the caches on the way.
    packed = client.request("GET", "/", {"accept-encoding": "gzip"})
    weak = packed.header("etag")
    assert packed.header("content-encoding") == "gzip"
    assert weak and weak.startswith('W/"'), packed.headers
    cached = client.request("GET", "/", {"accept-encoding": "gzip", "if-none-match": weak})
    assert cached.status == 304, cached
    assert cached.header("etag") == weak
    assert "accept-encoding" in tokens(cached.header("vary"))
    changed = client.request("GET", "/", {"if-none-match": '"stale"'})
    assert changed.status == 200


def check_all(client: Client, target: Target) -> None:
    """Every check, in one app instance (one server start)."""
    check_security(client)
    check_preflight(client)
    index_bytes = check_compressed_json(client)
    check_session(client)
    check_rate_limit(client)
    check_trace_and_log(client, target)
    check_error(client)
    check_metrics(client, target, index_bytes)
    # Last: their requests would change the counts check_metrics reads.
    check_body_limit(client)
    check_conditional(client)


# --------------------------------------------------------------------------- the tests


@pytest.mark.e2e
@pytest.mark.parametrize("framework", list(TARGETS))
def test_full_stack(live_server: LiveServerFactory, framework: str) -> None:
    target = TARGETS[framework]
    server = live_server(target.app, env=target.env)
    client = HttpxClient(server.url)
    try:
        check_all(client, target)
    finally:
        client.close()


WSGI_SCRIPT = """
import django
django.setup()
from tests.test_matrix import TARGETS, DjangoClient, check_all
check_all(DjangoClient(), TARGETS["django"])
print("ok")
"""


def test_full_stack_django_wsgi() -> None:
    # A process of its own: Django's settings are global, and the app module
    # installs an OpenTelemetry SDK.
    done = run_python(
        WSGI_SCRIPT, env={"DJANGO_SETTINGS_MODULE": "tests.apps.matrix_django_settings"}
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().endswith("ok")


# --------------------------------------------------------------------------- stack interplay


async def test_request_id_is_set_on_the_span_in_the_recommended_order() -> None:
    """docs/stack.md puts RequestIDMiddleware outside TracingMiddleware.

    RequestIDMiddleware's ``span_attribute`` (default ``"request.id"``) must
    then still reach the SERVER span that TracingMiddleware starts inside it.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, b"ok", b"text/plain")

    stacked = RequestIDMiddleware(TracingMiddleware(app, tracer_provider=provider))
    response = await call_http(stacked, "GET", "/")
    (span,) = exporter.get_finished_spans()
    assert response.header("x-request-id")
    assert dict(span.attributes or {}).get("request.id") == response.header("x-request-id")
