"""Server-side app for the compression end-to-end tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgi_kit import CompressionMiddleware
from examples.demo_app import demo_app

PAYLOAD = json.dumps(
    [{"id": i, "name": f"item {i}", "tags": ["alpha", "beta", "gamma"]} for i in range(500)]
).encode()
EVENTS = [f"id: {i}\ndata: {json.dumps({'n': i, 'pad': 'x' * 40})}\n\n".encode() for i in range(4)]
EVENT_DELAY = 0.12


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await demo_app(scope, receive, send)  # lifespan
        return
    if scope["path"] == "/events":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for i, event in enumerate(EVENTS):
            if i:
                await asyncio.sleep(EVENT_DELAY)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if scope["path"] == "/echo":
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(PAYLOAD)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": PAYLOAD})


app = CompressionMiddleware(_app, decompress_requests=True)
