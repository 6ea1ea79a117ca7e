"""Requests a middleware answers before the router are labelled by route, never <unmatched>.

A FastAPI app (tests/apps/metrics_answered_app.py) with CORS and rate
limiting in front of its router: 429s and preflights keep the route they
were headed for; those headed nowhere are labelled by the answering
middleware; only what the router itself found no route for is <unmatched>.
Checked in process, then over a real Uvicorn scraped by a real Prometheus.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from asgi_kit import MetricsMiddleware
from asgi_kit._routes import ANSWERED_BY_KEY
from asgi_kit.metrics import ANSWERED_ROUTE, UNMATCHED_ROUTE

from ._support.asgi import asgi_client, call_http
from ._support.redis import in_ci
from ._support.servers import ServerProcess, free_port

APP = "tests.apps.metrics_answered_app:app"
COUNT = "http_server_request_duration_seconds_count"
PREFLIGHT = {
    "origin": "https://app.example",
    "access-control-request-method": "POST",
}

# (method, path, headers, expected status, expected route label), in order:
# the limit of 3 a minute is reached by the third request that is not a preflight.
TRAFFIC: list[tuple[str, str, dict[str, str], int, str]] = [
    ("OPTIONS", "/orders", PREFLIGHT, 200, "/orders"),
    ("OPTIONS", "/v2/users/bob", PREFLIGHT, 200, "/v2/users/{name}"),
    ("OPTIONS", "/wp-admin/setup.php", PREFLIGHT, 200, "<cors>"),
    ("GET", "/items/1", {}, 200, "/items/{item_id}"),
    ("GET", "/wp-login.php", {}, 404, UNMATCHED_ROUTE),
    ("POST", "/orders", {}, 200, "/orders"),
    ("GET", "/items/2", {}, 429, "/items/{item_id}"),
    ("GET", "/v2/users/alice", {}, 429, "/v2/users/{name}"),
    ("GET", "/.env", {}, 429, "<ratelimit>"),
]


def _expected() -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}
    for method, _, _, status, route in TRAFFIC:
        key = (method, route, str(status))
        counts[key] = counts.get(key, 0) + 1
    return counts


def _counts(text: str | CollectorRegistry) -> dict[tuple[str, str, str], int]:
    """Request counts by (method, route, status) from a scrape or a registry."""
    families = text_string_to_metric_families(text) if isinstance(text, str) else text.collect()
    found: dict[tuple[str, str, str], int] = {}
    for family in families:
        for sample in family.samples:
            if sample.name == COUNT:
                labels = sample.labels
                key = (labels["method"], labels["route"], labels["status_code"])
                found[key] = int(sample.value)
    return found


async def test_fastapi_429_and_preflight_keep_their_route() -> None:
    import importlib

    import tests.apps.metrics_answered_app as module

    module = importlib.reload(module)  # a fresh registry and limiter
    async with asgi_client(module.app) as client:
        for method, path, headers, status, _ in TRAFFIC:
            response = await client.request(method, path, headers=headers)
            assert response.status_code == status, (method, path)
        text = (await client.get("/metrics")).text
    assert _counts(text) == _expected()


async def test_unnamed_middleware_answer_before_the_router() -> None:
    from fastapi import FastAPI

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def auth(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"].startswith("/admin"):
                if scope["path"] == "/admin/named":
                    scope[ANSWERED_BY_KEY] = "auth"
                await refuse(scope, receive, send)
            else:
                await app(scope, receive, send)

        return middleware

    api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    registry = CollectorRegistry()
    api.add_middleware(auth)  # type: ignore[arg-type]
    api.add_middleware(MetricsMiddleware, registry=registry)
    for path in ("/admin/x", "/admin/named", "/nothing"):
        await call_http(api, path=path)
    value = registry.get_sample_value
    assert value(COUNT, {"method": "GET", "route": ANSWERED_ROUTE, "status_code": "401"}) == 1
    assert value(COUNT, {"method": "GET", "route": "<auth>", "status_code": "401"}) == 1
    assert value(COUNT, {"method": "GET", "route": UNMATCHED_ROUTE, "status_code": "404"}) == 1


async def test_raw_asgi_app_without_router_stays_unmatched() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    registry = CollectorRegistry()
    await call_http(MetricsMiddleware(app, registry=registry), path="/x")
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "status_code": "404"}
    assert registry.get_sample_value(COUNT, labels) == 1


# --------------------------------------------------------------------------- real Prometheus


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        reason = "prometheus is not installed (Debian: apt-get install prometheus)"
        if in_ci():
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return binary


class Prometheus:
    """A real Prometheus scraping one target every second, on a loopback port."""

    def __init__(self, binary: str, target: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        return result

    def wait_for(self, expr: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                last = self.query(expr)
            except OSError:
                last = []
            if len(last) >= count:
                return last
            time.sleep(0.3)
        self._log.seek(0)
        log = self._log.read().decode(errors="replace")[-2000:]
        raise AssertionError(f"Prometheus never had {count} series for {expr}: {last}\n{log}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def uvicorn_app() -> Iterator[ServerProcess]:
    server = ServerProcess("uvicorn", APP)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.e2e
def test_real_prometheus_scrape_shows_route_labels(
    prometheus_binary: str, uvicorn_app: ServerProcess, tmp_path: Path
) -> None:
    with httpx.Client(base_url=uvicorn_app.url, timeout=10) as client:
        for method, path, headers, status, _ in TRAFFIC:
            assert client.request(method, path, headers=headers).status_code == status
    prometheus = Prometheus(prometheus_binary, f"127.0.0.1:{uvicorn_app.port}", tmp_path)
    try:
        expected = _expected()
        series = prometheus.wait_for(COUNT, len(expected))
    finally:
        prometheus.close()
    seen = {
        (s["metric"]["method"], s["metric"]["route"], s["metric"]["status_code"]): int(
            float(s["value"][1])
        )
        for s in series
    }
    assert seen == expected
    assert not any(s["metric"]["route"].startswith("/.env") for s in series)


# --------------------------------------------------------------------------- Django adapters

DJANGO_REGISTRY = CollectorRegistry()


def _django_metrics() -> Any:
    from asgi_kit.contrib.django import asgi_middleware

    return asgi_middleware("asgi_kit.metrics.MetricsMiddleware", registry=DJANGO_REGISTRY)


DjangoMetrics = _django_metrics()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
async def test_django_adapters_label_answered_requests_by_resolver_route(kind: str) -> None:
    from django.test import override_settings

    from asgi_kit import MemoryBackend, Rule
    from tests._support.django import fetch
    from tests.apps.django_project import configure

    configure()
    before = _counts(DJANGO_REGISTRY)
    settings = {
        "MIDDLEWARE": [
            "tests.test_metrics_answered.DjangoMetrics",
            "asgi_kit.contrib.django.CORSMiddleware",
            "asgi_kit.contrib.django.RateLimitMiddleware",
        ],
        "ASGI_KIT": {
            "CORSMiddleware": {
                "allow_origins": ["https://app.example"],
                "allow_methods": ["GET", "POST"],
            },
            # Django's test clients build the chain per request: share one backend.
            "RateLimitMiddleware": {
                "rules": [Rule("1/minute")],
                "key": _own_key(kind),
                "backend": MemoryBackend(),
            },
        },
    }
    with override_settings(**settings):
        assert (await fetch(kind, "OPTIONS", "/items/3", headers=PREFLIGHT)).status == 200
        assert (await fetch(kind, "OPTIONS", "/nowhere", headers=PREFLIGHT)).status == 200
        assert (await fetch(kind, "GET", "/items/1")).status == 200
        assert (await fetch(kind, "GET", "/items/2")).status == 429
        assert (await fetch(kind, "GET", "/api/legacy/2024/")).status == 429
        assert (await fetch(kind, "GET", "/wp-login.php")).status == 429
    after = _counts(DJANGO_REGISTRY)
    new = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert new == {
        ("OPTIONS", "/items/<int:pk>", "200"): 1,
        ("OPTIONS", "<cors>", "200"): 1,
        ("GET", "/items/<int:pk>", "200"): 1,
        ("GET", "/items/<int:pk>", "429"): 1,
        ("GET", "/api/legacy/(?P<year>[0-9]{4})/", "429"): 1,
        ("GET", "<ratelimit>", "429"): 1,
    }


def _own_key(kind: str) -> Any:
    return lambda scope: f"django-{kind}"
