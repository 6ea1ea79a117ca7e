"""Exactness across processes: 4 Uvicorn workers + a skewed-clock process on one Redis."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator

import httpx
import pytest

from ._support.servers import LiveServerFactory, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

APP = "tests.apps.ratelimit_app:app"


@pytest.fixture
def servers(redis_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    workers = ServerProcess("uvicorn", APP, env={"REDIS_URL": redis_url}, args=["--workers", "4"])
    try:
        skewed = ServerProcess(
            "uvicorn", APP, env={"REDIS_URL": redis_url, "RATELIMIT_CLOCK_SKEW": "-3600"}
        )
    except BaseException:
        workers.stop()
        raise
    try:
        yield workers, skewed
    finally:
        skewed.stop()
        workers.stop()


async def _blast(urls: list[str], total: int) -> list[httpx.Response]:
    """Send ``total`` requests with every one of them in flight at once.

    No connection cap (each request gets its own connection), and a barrier
    so no request is sent before every one of them is ready to go.
    """
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(120)
    start = asyncio.Event()
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def one(i: int) -> httpx.Response:
            await start.wait()
            return await client.get(urls[i % len(urls)])

        tasks = [asyncio.ensure_future(one(i)) for i in range(total)]
        await asyncio.sleep(0)  # every task is now waiting on the barrier
        start.set()
        return await asyncio.gather(*tasks)


def _wait_for_all_workers(url: str) -> None:
    # uvicorn --workers listens before every worker has imported the app.
    deadline = time.monotonic() + 20
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{url}/unlimited").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError("server did not answer")


@pytest.mark.timeout(300)
async def test_2000_requests_in_flight_across_processes_admit_exactly_100(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    workers, skewed = servers
    _wait_for_all_workers(workers.url)
    _wait_for_all_workers(skewed.url)

    for path, window, total in (("/sliding", 60, 2000), ("/gcra", 3600, 300)):
        # Three of four requests go to the 4-worker server, one to the skewed host.
        urls = [f"{workers.url}{path}"] * 3 + [f"{skewed.url}{path}"]
        responses = await _blast(urls, total)
        ok = [r for r in responses if r.status_code == 200]
        limited = [r for r in responses if r.status_code == 429]
        assert len(ok) == 100, path
        assert len(limited) == total - 100, path
        for r in limited:
            retry = int(r.headers["retry-after"])
            # A sliding window full at its start frees one unit 1/limit of a
            # window after it rolls over: the wait can reach window * 1.01.
            assert 1 <= retry <= math.ceil(window * 1.01)
            assert r.headers["ratelimit-limit"] == "100"
            assert r.headers["ratelimit-remaining"] == "0"
            assert r.headers["ratelimit-reset"] == r.headers["retry-after"]
            assert r.headers["ratelimit-policy"] == f"100;w={window}"
            assert r.json()["detail"] == "Too Many Requests"
        assert sorted(int(r.headers["ratelimit-remaining"]) for r in ok) == list(range(100))
        # The decision really was shared: several processes answered, and
        # together they admitted 100, not 100 each.
        assert len({r.headers["x-worker-pid"] for r in responses}) >= 2
        assert any(r.url.port == skewed.port for r in ok + limited)


def test_websocket_handshake_limited_over_real_servers(live_server: LiveServerFactory) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    server = live_server("tests.apps.ratelimit_ws_app:app")
    with connect(f"{server.ws_url}/ws", open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
    with pytest.raises(InvalidStatus) as info, connect(f"{server.ws_url}/ws", open_timeout=10):
        pass
    response = info.value.response
    if live_server.server == "daphne":  # no HTTP-response extension: plain refusal
        assert response.status_code == 403
    else:
        assert response.status_code == 429
        assert response.headers["retry-after"] == "60"
