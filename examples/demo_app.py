"""A small raw-ASGI application used by the demo and the end-to-end tests.

Routes: ``/`` JSON, ``/stream`` a chunked text stream, ``/events`` Server-Sent
Events, ``/session`` a per-visitor counter kept in ``scope["session"]`` (when
a session middleware is present), ``/limited`` (rate-limited in the full
stack), ``/health``, ``/error`` (raises), ``/ws`` a WebSocket echo; lifespan
is handled.  No framework: the app names its own route templates in
``scope["asgi_kit.route"]`` so metrics and traces get a bounded ``route``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

Scope = dict[str, Any]


async def _json(send: Any, data: Any, status: int = 200) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Any, content_type: bytes, chunks: list[bytes], delay: float) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), (b"cache-control", b"no-cache")],
        }
    )
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await asyncio.sleep(delay)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _echo(receive: Any, send: Any) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


ROUTES = frozenset({"/", "/stream", "/events", "/session", "/limited", "/health", "/error", "/ws"})


async def demo_app(scope: Scope, receive: Any, send: Any) -> None:
    """The bare demo application (no middleware)."""
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(receive, send)
        return
    path = scope["path"]
    if path in ROUTES:
        scope["asgi_kit.route"] = path
    if kind == "websocket":
        if path == "/ws":
            await _echo(receive, send)
        else:
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/":
        await _json(
            send,
            {"hello": "asgi_kit", "items": [{"id": i, "name": f"item {i}"} for i in range(40)]},
        )
    elif path == "/stream":
        await _stream(
            send,
            b"text/plain; charset=utf-8",
            [f"chunk {i}\n".encode() * 20 for i in range(5)],
            0.05,
        )
    elif path == "/events":
        await _stream(
            send,
            b"text/event-stream",
            [f"id: {i}\ndata: event {i}\n\n".encode() for i in range(5)],
            0.05,
        )
    elif path == "/session":
        session = scope.get("session")
        if session is None:
            await _json(send, {"error": "no session middleware"}, 500)
            return
        session["count"] = int(session.get("count", 0)) + 1
        await _json(send, {"count": session["count"]})
    elif path == "/limited":
        await _json(send, {"ok": True})
    elif path == "/health":
        await _json(send, {"status": "ok"})
    elif path == "/error":
        raise RuntimeError("demo failure")
    else:
        await _json(send, {"error": "not found", "path": path}, 404)
