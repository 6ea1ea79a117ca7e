"""CompressionMiddleware around a raw ASGI app: JSON, a stream and Server-Sent Events.

Run: ``uvicorn examples.compression_raw:app`` then try
``curl -s --compressed -v http://127.0.0.1:8000/`` and
``curl -sN -H 'Accept-Encoding: br' http://127.0.0.1:8000/events | brotli -d``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgi_kit import CompressionMiddleware

ITEMS = [{"id": i, "name": f"item {i}", "tags": ["a", "b", "c"]} for i in range(200)]


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/events":
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(5):
            event = f"data: {json.dumps({'tick': i})}\n\n".encode()
            # Each event is compressed and flushed: the client sees it now.
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.sleep(1)
        await send({"type": "http.response.body", "body": b""})
        return
    body = json.dumps(ITEMS).encode()
    headers = [(b"content-type", b"application/json")]
    if scope["path"] == "/raw":
        # Opt this one response out; the header never reaches the client.
        headers.append((b"x-asgi-kit-compression", b"off"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = CompressionMiddleware(
    raw_app,
    minimum_size=500,
    # Add "zstd" (e.g. ("br", "zstd", "gzip")) after `pip install '.[zstd]'`.
    encodings=("br", "gzip"),
    brotli_quality=4,
    gzip_level=6,
    decompress_requests=True,
)
