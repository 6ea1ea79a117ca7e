"""MetricsMiddleware over real sockets: three servers, and Uvicorn with two workers."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from ._support.servers import LiveServerFactory, ServerProcess

pytestmark = pytest.mark.e2e

APP = "tests.apps.metrics_app:app"
COUNT = "http_server_request_duration_seconds_count"


def _value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_metrics_under_real_servers(live_server: LiveServerFactory) -> None:
    server = live_server(APP)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(3):
            assert client.get(f"/items/{i}").status_code == 200
        assert client.get("/wp-login.php").status_code == 404
        with connect(f"{server.ws_url}/ws/lobby", open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "lobby:hi"

        text = client.get("/metrics").text
        assert _value(text, COUNT, method="GET", route="/items/{item_id}", status_code="200") == 3
        assert _value(text, COUNT, method="GET", route="<unmatched>", status_code="404") == 1
        assert _value(text, COUNT, route="/metrics") is None
        total = "http_server_websocket_connections_total"
        assert _value(text, total, route="/ws/{room}", outcome="accepted") == 1

        headers = {"accept": "application/openmetrics-text", "accept-encoding": "gzip"}
        with client.stream("GET", "/metrics", headers=headers) as response:
            assert response.headers["content-encoding"] == "gzip"
            assert response.headers["content-type"].startswith("application/openmetrics-text")
            raw = b"".join(response.iter_raw())
        names = {f.name for f in openmetrics_families(gzip.decompress(raw).decode())}
        assert "http_server_request_duration_seconds" in names
        assert client.post("/metrics").status_code == 405


def test_multiprocess_uvicorn_two_workers_one_scrape_shows_the_total(tmp_path: Path) -> None:
    server = ServerProcess(
        "uvicorn", APP, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, args=["--workers", "2"]
    )
    try:
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
        with httpx.Client(base_url=server.url, timeout=30, limits=limits) as client:

            def hit(i: int) -> int:
                response = client.get(f"/items/{i}", params={"block": "0.02"})
                assert response.status_code == 200
                return int(response.json()["pid"])

            pids: set[int] = set()
            sent = 0
            with ThreadPoolExecutor(max_workers=4) as pool:
                for _ in range(10):
                    pids.update(pool.map(hit, range(sent, sent + 16)))
                    sent += 16
                    if len(pids) == 2:
                        break
            assert len(pids) == 2, f"requests never reached the second worker: {pids}"

            for _ in range(2):  # whichever worker answers the scrape reports the total
                response = client.get("/metrics", headers={"accept-encoding": "gzip"})
                text = response.text
                labels = {"method": "GET", "route": "/items/{item_id}", "status_code": "200"}
                assert _value(text, COUNT, **labels) == sent
                assert _value(text, "http_server_active_requests", method="GET") == 0
        assert len(list(tmp_path.glob("histogram_*.db"))) == 2
        assert len(list(tmp_path.glob("gauge_livesum_*.db"))) == 2
    finally:
        server.stop()
    # Workers that exit remove their live gauges (they would be summed as live
    # forever); their histograms stay, so the totals survive a restart.
    assert not list(tmp_path.glob("gauge_livesum_*.db"))
    assert len(list(tmp_path.glob("histogram_*.db"))) == 2


def test_exemplars_link_to_the_real_tracing_span_under_real_servers(
    live_server: LiveServerFactory,
) -> None:
    server = live_server("tests.apps.metrics_traced_app:app")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        trace_ids = {client.get(f"/items/{i}").json()["trace_id"] for i in range(2)}
        assert len(trace_ids) == 2 and "0" * 32 not in trace_ids
        response = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        plain = client.get("/metrics").text
    exemplars = {
        sample.exemplar.labels["trace_id"]
        for family in openmetrics_families(response.text)
        if family.name == "http_server_request_duration_seconds"
        for sample in family.samples
        if sample.exemplar is not None and sample.labels.get("route") == "/items/{item_id}"
    }
    # Both requests may land in one bucket, which keeps the latest exemplar.
    assert exemplars and exemplars <= trace_ids
    assert "trace_id" not in plain  # the classic format has no exemplars
    assert _value(plain, COUNT, route="/items/{item_id}", status_code="200") == 2
