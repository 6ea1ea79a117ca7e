"""In-process drivers: call an ASGI app and capture exactly what it sends.

``call_http`` records every message (so tests can check streaming, flushing
and header order, which httpx's ASGITransport hides by buffering); ``asgi_client``
gives an ``httpx.AsyncClient`` for ordinary request/response checks;
``websocket`` wraps asgiref's ``ApplicationCommunicator`` for handshakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgiref.testing import ApplicationCommunicator

from asgi_kit._http import header_value, header_values
from asgi_kit.types import ASGIApp, Message, Scope

HeaderInput = Iterable[tuple[str | bytes, str | bytes]] | dict[str, str]


def raw_headers(headers: HeaderInput | None) -> list[tuple[bytes, bytes]]:
    """Turn str/bytes pairs or a dict into an ASGI header list (names lower-cased)."""
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    out: list[tuple[bytes, bytes]] = []
    for k, v in items:
        kb = k.encode("latin-1") if isinstance(k, str) else k
        vb = v.encode("latin-1") if isinstance(v, str) else v
        out.append((kb.lower(), vb))
    return out


def http_scope(
    method: str = "GET",
    path: str = "/",
    headers: HeaderInput | None = None,
    query_string: bytes = b"",
    scheme: str = "http",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    server: tuple[str, int] | None = ("testserver", 80),
    http_version: str = "1.1",
    **extra: Any,
) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": query_string,
        "root_path": "",
        "headers": raw_headers(headers),
        "client": client,
        "server": server,
        "extensions": {},
        "state": {},
    }
    scope.update(extra)
    return scope


def websocket_scope(
    path: str = "/ws",
    headers: HeaderInput | None = None,
    *,
    http_response_extension: bool = False,
    **extra: Any,
) -> Scope:
    scope = http_scope("GET", path, headers, scheme="ws", **extra)
    scope["type"] = "websocket"
    del scope["method"]
    scope["subprotocols"] = []
    if http_response_extension:
        scope["extensions"] = {"websocket.http.response": {}}
    return scope


@dataclass
class CapturedResponse:
    """Everything an app sent for one HTTP request."""

    messages: list[Message] = field(default_factory=list)

    @property
    def start(self) -> Message:
        for m in self.messages:
            if m["type"] == "http.response.start":
                return m
        raise AssertionError(f"no http.response.start in {self.messages!r}")

    @property
    def status(self) -> int:
        return int(self.start["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(bytes(k), bytes(v)) for k, v in self.start.get("headers", [])]

    def header(self, name: str) -> str | None:
        value = header_value(self.headers, name.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")

    def header_all(self, name: str) -> list[str]:
        return [v.decode("latin-1") for v in header_values(self.headers, name.lower().encode())]

    @property
    def chunks(self) -> list[bytes]:
        return [
            bytes(m.get("body", b"")) for m in self.messages if m["type"] == "http.response.body"
        ]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def text(self) -> str:
        return self.body.decode()


async def streaming_app(scope: Scope, receive: Any, send: Any) -> None:
    """Streams ``b"0"``, ``b"1"``, ``b"2"`` with ``more_body=True``, then an empty last chunk."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for i in range(3):
        await send({"type": "http.response.body", "body": b"%d" % i, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def call_http(
    app: ASGIApp,
    method: str = "GET",
    path: str = "/",
    headers: HeaderInput | None = None,
    body: bytes | Sequence[bytes] = b"",
    *,
    scope: Scope | None = None,
    on_send: Callable[[Message], Any] | None = None,
    disconnect_after_body: bool = True,
    **scope_kwargs: Any,
) -> CapturedResponse:
    """Run one HTTP request through ``app`` in-process and capture what it sends.

    ``body`` may be a list of chunks (sent with ``more_body=True`` between
    them).  After the body the app sees ``http.disconnect`` once the response
    completed (as servers do), or waits forever when ``disconnect_after_body``
    is False.  ``on_send`` is called for each message as it is sent, before
    the app continues, so tests can observe ordering.
    """
    if scope is None:
        scope = http_scope(method, path, headers, **scope_kwargs)
    chunks = [body] if isinstance(body, bytes) else list(body) or [b""]
    pending: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    captured = CapturedResponse()
    done = asyncio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if disconnect_after_body:
            await done.wait()
        else:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        captured.messages.append(message)
        if on_send is not None:
            result = on_send(message)
            if asyncio.iscoroutine(result):
                await result
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await app(scope, receive, send)
    return captured


def asgi_client(
    app: ASGIApp, base_url: str = "http://testserver", **kwargs: Any
) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in-process (bodies are buffered)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs)


@asynccontextmanager
async def websocket(
    app: ASGIApp, scope: Scope | None = None, **scope_kwargs: Any
) -> AsyncIterator[ApplicationCommunicator]:
    """An ``ApplicationCommunicator`` for a WebSocket connection to ``app``.

    The caller sends ``{"type": "websocket.connect"}`` and reads the answer
    with ``receive_output``; the app task is cancelled on exit.
    """
    communicator = ApplicationCommunicator(app, scope or websocket_scope(**scope_kwargs))
    try:
        yield communicator
    finally:
        if not communicator.future.done():
            communicator.future.cancel()
            try:
                await communicator.future
            except (asyncio.CancelledError, Exception):
                pass
