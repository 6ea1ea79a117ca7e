"""WebSocketRateLimitMiddleware: inbound message limits, close 1008, shared backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asgi_kit.ratelimit import (
    MemoryBackend,
    Rule,
    WebSocketRateLimitMiddleware,
    header,
)

from ._support.asgi import http_scope, websocket, websocket_scope
from ._support.ratelimit import redis_backend
from ._support.servers import LiveServerFactory
from .apps.ratelimit_ws_messages_app import echo


async def converse(app: Any, texts: int, **scope: Any) -> tuple[list[str], dict[str, Any] | None]:
    """Send ``texts`` messages; the echoes received and the close message, if any."""
    echoes: list[str] = []
    async with websocket(app, websocket_scope(**scope)) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(2))["type"] == "websocket.accept"
        for i in range(texts):
            await ws.send_input({"type": "websocket.receive", "text": f"m{i}"})
            out = await ws.receive_output(2)
            if out["type"] == "websocket.close":
                await asyncio.wait_for(ws.future, 2)  # the app saw a disconnect and ended
                return echoes, out
            echoes.append(out["text"])
        await ws.send_input({"type": "websocket.disconnect", "code": 1000})
    return echoes, None


async def test_per_connection_limit_closes_with_1008() -> None:
    mw = WebSocketRateLimitMiddleware(echo, rules=[Rule("3/minute")])
    echoes, closed = await converse(mw, 6, path="/ws")
    assert echoes == ["m0", "m1", "m2"]
    assert closed == {"type": "websocket.close", "code": 1008, "reason": "rate limit exceeded"}
    # A new connection of the same client starts afresh.
    assert (await converse(mw, 3, path="/ws"))[0] == ["m0", "m1", "m2"]


async def test_per_key_limit_spans_connections() -> None:
    mw = WebSocketRateLimitMiddleware(
        echo, rules=[Rule("4/minute", key=header("x-user"))], per="key"
    )
    user = {"headers": [(b"x-user", b"u1")]}
    assert (await converse(mw, 3, path="/ws", **user))[0] == ["m0", "m1", "m2"]
    echoes, closed = await converse(mw, 3, path="/ws", **user)
    assert echoes == ["m0"] and closed is not None and closed["code"] == 1008
    other = {"headers": [(b"x-user", b"u2")]}
    assert (await converse(mw, 3, path="/ws", **other))[0] == ["m0", "m1", "m2"]
    # No key: not limited.
    assert len((await converse(mw, 8, path="/ws"))[0]) == 8


async def test_scoped_rules_exclusions_and_http_pass_through() -> None:
    mw = WebSocketRateLimitMiddleware(
        echo, rules=[Rule("1/minute", path="/chat/*")], exclude_paths=["/chat/ops"]
    )
    assert len((await converse(mw, 4, path="/other"))[0]) == 4
    assert len((await converse(mw, 4, path="/chat/ops"))[0]) == 4
    echoes, closed = await converse(mw, 4, path="//chat/room")  # any spelling counts
    assert echoes == ["m0"] and closed is not None

    seen: list[str] = []

    async def http_app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await WebSocketRateLimitMiddleware(http_app)(http_scope(), None, None)  # type: ignore[arg-type]
    assert seen == ["http"]


async def test_backend_failure() -> None:
    class Broken(MemoryBackend):
        async def hit(self, checks: Any) -> Any:
            raise ConnectionError("down")

    allow = WebSocketRateLimitMiddleware(echo, rules=[Rule("1/minute")], backend=Broken())
    assert len((await converse(allow, 3, path="/ws"))[0]) == 3
    deny = WebSocketRateLimitMiddleware(
        echo, rules=[Rule("1/minute")], backend=Broken(), on_backend_error="deny"
    )
    echoes, closed = await converse(deny, 3, path="/ws")
    assert echoes == [] and closed is not None and closed["code"] == 1011


def test_validation() -> None:
    with pytest.raises(ValueError, match="per"):
        WebSocketRateLimitMiddleware(echo, per="user")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="close_code"):
        WebSocketRateLimitMiddleware(echo, close_code=999)
    with pytest.raises(TypeError, match="close_code"):
        WebSocketRateLimitMiddleware(echo, close_code="1008")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="close_reason"):
        WebSocketRateLimitMiddleware(echo, close_reason="x" * 200)
    with pytest.raises(TypeError, match="rules"):
        WebSocketRateLimitMiddleware(echo, rules="1/minute")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WebSocketRateLimitMiddleware(5)  # type: ignore[arg-type]


@pytest.mark.redis
async def test_per_key_limit_on_redis_across_workers(redis_url: str) -> None:
    async with redis_backend(redis_url, "ws:") as backend:
        rules = [Rule("3/minute", key=header("x-user"))]
        workers = [
            WebSocketRateLimitMiddleware(echo, rules=rules, backend=backend, per="key")
            for _ in range(2)
        ]
        user = {"headers": [(b"x-user", b"r1")]}
        assert (await converse(workers[0], 2, path="/ws", **user))[0] == ["m0", "m1"]
        echoes, closed = await converse(workers[1], 3, path="/ws", **user)
        assert echoes == ["m0"] and closed is not None and closed["code"] == 1008


@pytest.mark.e2e
def test_over_real_servers(live_server: LiveServerFactory) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    server = live_server("tests.apps.ratelimit_ws_messages_app:app")
    # Daphne refuses application close codes below 3000: 4008 mirrors 1008.
    code = 4008 if live_server.server == "daphne" else 1008
    for _ in range(2):  # per connection: each gets 3
        with connect(f"{server.ws_url}/ws", open_timeout=10) as ws:
            for i in range(3):
                ws.send(f"m{i}")
                assert ws.recv(timeout=10) == f"m{i}"
            ws.send("over")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=10)
            assert info.value.rcvd is not None and info.value.rcvd.code == code
    # Per key: the second connection only gets what the first left.
    with connect(f"{server.ws_url}/ws-shared", open_timeout=10) as ws:
        for i in range(2):
            ws.send(f"s{i}")
            assert ws.recv(timeout=10) == f"s{i}"
    with connect(f"{server.ws_url}/ws-shared", open_timeout=10) as ws:
        ws.send("s2")
        assert ws.recv(timeout=10) == "s2"
        ws.send("s3")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == code
