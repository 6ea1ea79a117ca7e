"""Server-side app for the logging/proxy end-to-end tests.

The stack is ProxyHeaders → RequestID → AccessLog → a raw app that reports
what it sees; access-log events are JSON lines on stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import structlog
from demo_app import demo_app

from asgi_kit import (
    AccessLogMiddleware,
    ProxyHeadersMiddleware,
    RequestIDMiddleware,
    get_request_id,
)

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.JSONRenderer(),
    ],
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
)


def _report(scope: dict[str, Any]) -> bytes:
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"host"), None)
    return json.dumps(
        {
            "client": scope.get("client"),
            "scheme": scope.get("scheme"),
            "host": host,
            "request_id": get_request_id(),
            "state_request_id": scope["state"]["request_id"],
        }
    ).encode()


async def _slow_stream(receive: Any, send: Any) -> None:
    """40 chunks 50 ms apart; stops when the client disconnects (as Starlette does)."""
    disconnected = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    watcher = asyncio.create_task(watch())
    await send({"type": "http.response.start", "status": 200, "headers": []})
    try:
        for _ in range(40):
            if disconnected.is_set():
                return
            await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b""})
    finally:
        watcher.cancel()


async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/slow":
        await _slow_stream(receive, send)
    elif scope["type"] == "http":
        body = _report(scope)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": _report(scope).decode()})
        await send({"type": "websocket.close", "code": 1000})
    else:
        await demo_app(scope, receive, send)  # lifespan


def _stack(**proxy_options: Any) -> Any:
    return ProxyHeadersMiddleware(
        RequestIDMiddleware(AccessLogMiddleware(inner)),
        trusted_hosts=["127.0.0.1", "10.0.0.0/8"],
        forwarded_host=True,
        **proxy_options,
    )


app = _stack()
forwarded_app = _stack(mode="forwarded")
