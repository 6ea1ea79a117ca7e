"""examples/full_stack_fastapi.py: the paste-able FastAPI stack, in process and under Uvicorn."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import brotli
import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from ._support.asgi import asgi_client
from ._support.servers import ServerProcess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import full_stack_fastapi

ORIGIN = full_stack_fastapi.FRONTEND


async def test_in_process_every_middleware_answers() -> None:
    async with asgi_client(full_stack_fastapi.app) as client:
        item = await client.get("/items/7", headers={"accept-encoding": "br", "origin": ORIGIN})
        assert item.status_code == 200
        assert item.headers["content-encoding"] == "br"
        assert item.json()["id"] == 7
        assert item.headers["access-control-allow-origin"] == ORIGIN
        assert item.headers["x-request-id"]

        assert (await client.get("/counter")).json() == {"count": 1}
        assert (await client.get("/counter")).json() == {"count": 2}

        forwarded = {"x-forwarded-for": "203.0.113.50"}  # its own rate-limit bucket
        statuses = [(await client.get("/limited", headers=forwarded)).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]

        preflight = await client.options(
            "/items/7",
            headers={"origin": ORIGIN, "access-control-request-method": "POST"},
        )
        assert preflight.status_code == 200

        metrics = (await client.get("/metrics")).text
        routes = {
            sample.labels.get("route")
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "http_server_request_duration_seconds_count"
        }
        assert {"/items/{item_id}", "/counter", "/limited"} <= routes


def test_under_uvicorn() -> None:
    server = ServerProcess(
        "uvicorn", "full_stack_fastapi:app", args=["--no-proxy-headers", "--no-access-log"]
    )
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            with client.stream("GET", "/items/3", headers={"accept-encoding": "br"}) as response:
                raw = b"".join(response.iter_raw())
            assert response.headers["content-encoding"] == "br"
            assert b'"id":3' in brotli.decompress(raw)
            assert client.get("/counter").json() == {"count": 1}
            assert client.get("/counter").json() == {"count": 2}
            statuses = [client.get("/limited").status_code for _ in range(6)]
            assert statuses == [200] * 5 + [429]

            started = time.monotonic()
            arrivals = []
            with client.stream("GET", "/events") as events:
                for _ in events.iter_bytes():
                    arrivals.append(time.monotonic() - started)
            assert len(arrivals) >= 2 and arrivals[-1] - arrivals[0] > 0.3

        with connect(server.ws_url + "/ws", origin=ORIGIN) as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
    finally:
        server.stop()
