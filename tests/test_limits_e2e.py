"""RequestLimitsMiddleware over real sockets under Uvicorn (tests/apps/limits_app.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from ._support.servers import LiveServerFactory
from .apps.limits_app import LIMIT

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("live_server", ["uvicorn"], indirect=True)]

TARGET = "tests.apps.limits_app:app"
CHUNK = 64 * 1024
UPLOAD = 10 * 1024 * 1024


def _stats(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/stats", timeout=10)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head


async def _chunked_upload(port: int) -> tuple[int, int]:
    """Stream 10 MiB chunked; returns (status, bytes sent before the answer came)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    answer = asyncio.ensure_future(_read_response(reader))
    sent = 0
    chunk = b"%x\r\n" % CHUNK + b"u" * CHUNK + b"\r\n"
    try:
        while sent < UPLOAD and not answer.done():
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 5)
            sent += CHUNK
        if not answer.done():
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.TimeoutError):
        pass  # the server stopped reading: exactly what a limit should do
    status, _ = await asyncio.wait_for(answer, 10)
    writer.close()
    return status, sent


async def test_chunked_upload_is_cut_at_the_limit(live_server: LiveServerFactory) -> None:
    server = live_server(TARGET)
    port = int(server.url.rsplit(":", 1)[1])
    status, sent = await _chunked_upload(port)
    assert status == 413
    stats = _stats(server.url)
    (seen,) = stats["upload_seen"]
    # The app never saw more than the limit plus one chunk (here: not even that).
    assert seen <= LIMIT + stats["upload_chunk_max"]
    assert seen > LIMIT - 4 * CHUNK
    assert sent <= UPLOAD


async def test_declared_oversize_body_is_refused_before_it_is_sent(
    live_server: LiveServerFactory,
) -> None:
    server = live_server(TARGET)
    port = int(server.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % UPLOAD)
    await writer.drain()
    status, head = await asyncio.wait_for(_read_response(reader), 10)
    writer.close()
    assert status == 413
    assert b"application/json" in head
    assert _stats(server.url)["upload_seen"] == []


async def test_200_concurrent_requests_70_served_130_shed(live_server: LiveServerFactory) -> None:
    server = live_server(TARGET)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
        responses = await asyncio.gather(*(client.get("/slow") for _ in range(200)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 70, statuses
    assert statuses.count(503) == 130, statuses
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
    stats = _stats(server.url)
    assert stats["served"] == 70
    assert stats["shed"] == {"queue_full": 130, "queue_timeout": 0}
    # 20 running and 50 queued at the same moment the 130 others were refused.
    assert stats["peak"] == 70


async def test_timed_out_app_is_cleaned_up(live_server: LiveServerFactory) -> None:
    server = live_server(TARGET)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.get("/timeout/hang")
        assert response.status_code == 504
        assert response.json() == {"detail": "The application did not answer in time"}
        stats = (await client.get("/stats")).json()
    assert stats["cleanups"] == 1
    assert stats["hanging"] == 0


async def test_fastapi_upload_cut_and_timeout_leave_no_server_error(
    live_server: LiveServerFactory,
) -> None:
    from .apps.limits_fastapi_app import LIMIT as FASTAPI_LIMIT

    server = live_server("tests.apps.limits_fastapi_app:app")

    async def chunks() -> Any:
        for _ in range(FASTAPI_LIMIT // CHUNK + 4):
            yield b"z" * CHUNK

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        small = await client.post("/upload", content=b"a" * 1000)
        assert small.json() == {"size": 1000}
        cut = await client.post("/upload", content=chunks())
        assert cut.status_code == 413
        assert cut.json() == {"detail": "Request body too large"}
        slow = await client.get("/slow")
        assert slow.status_code == 504
        assert (await client.get("/cleanups")).json() == ["slow"]
    # Neither the cut body (ClientDisconnect in the app) nor the timeout
    # became a server-side traceback.
    assert "Traceback" not in server.log(), server.log()
