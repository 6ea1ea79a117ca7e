"""RedisStore under bursts and failures: every session call waits for a pooled connection."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import redis

from asgi_kit import RedisStore, SessionMiddleware
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http

pytestmark = pytest.mark.redis

SECRET = "example-secret-key"
HEADERS = [(b"Content-Type", b"application/json")]  # one list, reused: the app owns it
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}


async def counter_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/login?u=NAME`` starts a session; ``/bump`` reads it, increments ``n``."""
    session = scope["session"]
    if scope["path"] == "/login":
        session["user"] = scope["query_string"].decode().removeprefix("u=")
        session["n"] = 0
    elif scope["path"] == "/bump":
        session["n"] = session.get("n", -1000) + 1
    await send(START)
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": json.dumps(dict(session)).encode()})


def cookie_of(response: Any) -> str:
    header = response.header("set-cookie")
    assert header, response.headers
    return str(header.split(";", 1)[0].split("=", 1)[1])


async def test_1000_concurrent_sessions_read_and_write_without_errors(
    redis_url: str, caplog: pytest.LogCaptureFixture, sync_redis: redis.Redis
) -> None:
    store = RedisStore(redis_url, timeout=30.0)
    app = SessionMiddleware(counter_app, SECRET, store=store)
    users = [f"user{i}" for i in range(1000)]
    try:
        with caplog.at_level(logging.WARNING):
            logins = await asyncio.gather(
                *(call_http(app, path="/login", query_string=f"u={u}".encode()) for u in users)
            )
            cookies = [cookie_of(r) for r in logins]
            bumps = await asyncio.gather(
                *(call_http(app, path="/bump", headers={"cookie": f"session={c}"}) for c in cookies)
            )
            reads = await asyncio.gather(
                *(call_http(app, path="/", headers={"cookie": f"session={c}"}) for c in cookies)
            )
    finally:
        await store.aclose()
    assert not [
        r for r in caplog.records if r.name.startswith("asgi_kit") and r.levelno >= logging.WARNING
    ]
    assert [json.loads(r.text) for r in bumps] == [{"user": u, "n": 1} for u in users]
    assert [json.loads(r.text) for r in reads] == [{"user": u, "n": 1} for u in users]
    assert len(sync_redis.keys("session:*")) == 1000


def test_store_pool_options_validated(redis_url: str) -> None:
    with pytest.raises(ValueError, match="max_connections"):
        RedisStore(redis_url, max_connections=0)
    with pytest.raises(TypeError, match="max_connections"):
        RedisStore(redis_url, max_connections=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout"):
        RedisStore(redis_url, timeout="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scheme"):
        RedisStore("memcached://localhost")


async def flaky_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Like an app whose page logs out / redirects to login when the user is missing."""
    session = scope["session"]
    seen = {"user": session.get("user"), "unavailable": session.unavailable}
    if scope["path"] == "/logout-if-anonymous" and session.get("user") is None:
        session.clear()
    elif scope["path"] == "/remember":
        session["next"] = "/cart"
    await send(START)
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


async def test_a_failed_read_never_overwrites_or_logs_out_the_session(
    redis_url: str, sync_redis: redis.Redis
) -> None:
    store = RedisStore(redis_url, timeout=0.3)
    app = SessionMiddleware(counter_app, SECRET, store=store)
    flaky = SessionMiddleware(flaky_app, SECRET, store=store)
    try:
        cookie = cookie_of(await call_http(app, path="/login", query_string=b"u=ann"))
        headers = {"cookie": f"session={cookie}"}
        (key,) = sync_redis.keys("session:*")
        record = sync_redis.get(key)
        # Redis stops answering (CLIENT PAUSE ALL: every command waits), as
        # during a failover or an overloaded server: each load times out.
        sync_redis.execute_command("CLIENT", "PAUSE", "3000", "ALL")
        try:
            during = [
                await call_http(flaky, path=path, headers=headers)
                for path in ("/logout-if-anonymous", "/remember")
            ]
        finally:
            sync_redis.execute_command("CLIENT", "UNPAUSE")
        for response in during:
            # The app sees an empty session, and can tell why.
            assert json.loads(response.text) == {"user": None, "unavailable": True}
            # No Set-Cookie: the browser keeps its cookie (no logout, no new id).
            assert response.header("set-cookie") is None
        assert sync_redis.get(key) == record  # neither overwritten nor deleted
        after = await call_http(flaky, path="/", headers=headers)
        assert json.loads(after.text) == {"user": "ann", "unavailable": False}
    finally:
        await store.aclose()
