"""RequestLimitsMiddleware under a real server (tests/test_limits_e2e.py).

Two middleware instances behind a tiny router:

* ``/timeout/*`` runs under ``timeout=0.3``: ``/timeout/hang`` never answers
  and records its cleanup when it is cancelled.
* everything else runs under ``max_body_size=1 MiB``, ``max_concurrency=20``,
  ``max_queue=50``: ``/upload`` reads a streamed body and records how much it
  saw; ``/slow`` holds every request it runs until the middleware has shed
  130 requests (so all 200 of the concurrency test are in flight at once) or
  20 seconds passed, recording the peak of running plus queued requests.

``/stats`` (not limited) reports what the apps observed, as JSON.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgi_kit import RequestLimitsMiddleware
from asgi_kit._http import send_json

LIMIT = 1024 * 1024
SHED_TARGET = 130
HEADERS = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"2")]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
OK = {"type": "http.response.body", "body": b"ok", "more_body": False}

stats: dict[str, Any] = {
    "upload_seen": [],
    "upload_chunk_max": 0,
    "cleanups": 0,
    "hanging": 0,
    "peak": 0,
    "served": 0,
}


async def inner(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # lifespan: not supported, the server carries on
    path = scope["path"]
    if path == "/upload":
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = len(message.get("body", b""))
            seen += chunk
            stats["upload_chunk_max"] = max(stats["upload_chunk_max"], chunk)
            if not message.get("more_body", False):
                break
        stats["upload_seen"].append(seen)
        await send(START)
        await send(OK)
    elif path == "/slow":
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while limited._shed["queue_full"] < SHED_TARGET and loop.time() < deadline:
            stats["peak"] = max(stats["peak"], limited._active + len(limited._queue))
            await asyncio.sleep(0.01)
        stats["peak"] = max(stats["peak"], limited._active + len(limited._queue))
        stats["served"] += 1
        await send(START)
        await send(OK)
    elif path == "/timeout/hang":
        stats["hanging"] += 1
        try:
            await asyncio.sleep(60)
        finally:
            stats["hanging"] -= 1
            stats["cleanups"] += 1
    elif path == "/stats":
        await send_json(send, 200, {**stats, "shed": dict(limited._shed)})
    else:
        await send(START)
        await send(OK)


limited = RequestLimitsMiddleware(
    inner,
    max_body_size=LIMIT,
    max_concurrency=20,
    max_queue=50,
    exclude_paths=["/stats"],
)
timed = RequestLimitsMiddleware(inner, timeout=0.3)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"].startswith("/timeout/"):
        await timed(scope, receive, send)
    else:
        await limited(scope, receive, send)


def dump() -> str:
    return json.dumps(stats)
