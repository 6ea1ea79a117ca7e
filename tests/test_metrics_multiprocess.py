"""Multiprocess mode (asgi_kit.metrics.multiprocess): a worker's live gauges leave with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from asgi_kit import MetricsMiddleware
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.servers import run_python


def test_multiprocess_worker_removes_its_live_gauges_at_exit(tmp_path: Path) -> None:
    code = """
import asyncio, os
from prometheus_client import CollectorRegistry
from asgi_kit import MetricsMiddleware

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

async def main():
    middleware = MetricsMiddleware(app, registry=CollectorRegistry())
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    async def receive():
        return {"type": "http.request", "body": b""}
    async def send(message):
        pass
    await middleware(scope, receive, send)

asyncio.run(main())
print(os.getpid())
"""
    result = run_python(code, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    pid = result.stdout.split()[-1]
    names = {p.name for p in tmp_path.iterdir()}
    assert f"histogram_{pid}.db" in names  # the samples stay for the total
    assert f"gauge_livesum_{pid}.db" not in names  # a dead worker is no longer "live"


async def test_multiprocess_lifespan_shutdown_removes_this_workers_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Uvicorn's workers die by a re-raised SIGTERM, skipping exit hooks: the
    # lifespan shutdown is where the worker stops counting as live.
    import os

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    live = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    kept = tmp_path / f"histogram_{os.getpid()}.db"
    live.write_bytes(b"")
    kept.write_bytes(b"")

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message["type"].rpartition(".")[2]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return

    middleware = MetricsMiddleware(lifespan_app, registry=CollectorRegistry())
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            assert live.exists()

    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not live.exists() and kept.exists()
