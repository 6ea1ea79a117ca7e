"""Small canned responses, and refusing a WebSocket handshake before it is accepted."""

from __future__ import annotations

import json
from typing import Any

from asgi_kit.types import Headers, RawHeaders, Receive, Scope, Send

__all__ = ["APPLICATION_JSON", "TEXT_PLAIN", "refuse_websocket", "send_json", "send_response"]

TEXT_PLAIN = b"text/plain; charset=utf-8"
APPLICATION_JSON = b"application/json"


async def send_response(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: bytes | None = TEXT_PLAIN,
    headers: RawHeaders = (),
) -> None:
    """Send a complete small HTTP response (start + one body message)."""
    raw: Headers = [(b"content-length", str(len(body)).encode("ascii"))]
    if content_type is not None:
        raw.append((b"content-type", content_type))
    raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, data: Any, headers: RawHeaders = ()) -> None:
    """Send ``data`` as a compact JSON response (a refusal's machine-readable reason)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    await send_response(send, status, body, APPLICATION_JSON, headers)


async def refuse_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int = 403,
    body: bytes = b"",
    headers: RawHeaders = (),
    close_code: int = 1008,
) -> None:
    """Refuse a WebSocket handshake before it is accepted.

    Where the server supports the ``websocket.http.response`` extension the
    client gets a real HTTP ``status`` response; elsewhere the handshake is
    closed with ``close_code`` (servers answer that with HTTP 403).
    """
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        raw: Headers = [(b"content-length", str(len(body)).encode("ascii"))]
        if body:
            raw.append((b"content-type", TEXT_PLAIN))
        raw.extend(headers)
        await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
    else:
        await send({"type": "websocket.close", "code": close_code})
