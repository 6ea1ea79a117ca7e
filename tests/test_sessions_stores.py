"""Server-side sessions: store-call counts, fixation defence, MemoryStore, RedisStore."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit import MemoryStore, RedisStore, SessionMiddleware
from asgi_kit.sessions import SessionStore, load_session, regenerate_id
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http, websocket
from ._support.redis import RedisServer

SECRET = "example-secret-key"


class CountingStore(SessionStore):
    """Wraps a store and counts every call by operation."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    async def load(self, session_id: str) -> dict[str, Any] | None:
        self.calls["load"] += 1
        return await self.inner.load(session_id)

    async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
        self.calls["save"] += 1
        await self.inner.save(session_id, data, ttl)

    async def delete(self, session_id: str) -> None:
        self.calls["delete"] += 1
        await self.inner.delete(session_id)

    async def touch(self, session_id: str, ttl: int | None) -> None:
        self.calls["touch"] += 1
        await self.inner.touch(session_id, ttl)


class FailingStore(SessionStore):
    """A store whose backend is down."""

    async def load(self, session_id: str) -> dict[str, Any] | None:
        raise ConnectionError("backend down")

    async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
        raise ConnectionError("backend down")

    async def delete(self, session_id: str) -> None:
        raise ConnectionError("backend down")


def action_app(routes: dict[str, Any]) -> Any:
    """Raw ASGI app: ``routes[path](scope)`` (sync or async), then the session as JSON."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        action = routes.get(scope["path"])
        if action is not None:
            result = action(scope)
            if hasattr(result, "__await__"):
                await result
        body = b""
        if scope["path"] != "/untouched":
            body = json.dumps(dict(scope["session"])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def _set(**values: Any) -> Any:
    return lambda scope: scope["session"].update(values)


ROUTES: dict[str, Any] = {
    "/untouched": None,
    "/read": lambda scope: scope["session"].get("user"),
    "/login": _set(user="ann"),
    "/write": _set(n=1),
    "/logout": lambda scope: scope["session"].clear(),
    "/regenerate": lambda scope: regenerate_id(scope),
    "/relogin": lambda scope: (scope["session"].clear(), scope["session"].update(user="bob")),
}


def make(store: SessionStore, **options: Any) -> SessionMiddleware:
    return SessionMiddleware(action_app(ROUTES), SECRET, store=store, **options)


def cookie_of(response: Any) -> str | None:
    header = response.header("set-cookie")
    if header is None:
        return None
    return str(header.split(";", 1)[0].split("=", 1)[1])


async def login(app: SessionMiddleware) -> str:
    cookie = cookie_of(await call_http(app, path="/login"))
    assert cookie
    return cookie


def with_cookie(cookie: str) -> dict[str, str]:
    return {"cookie": f"session={cookie}"}


# ------------------------------------------------------------ store calls


async def test_store_call_counts_autoload() -> None:
    store = CountingStore(MemoryStore())
    app = make(store)
    # No cookie: never a store call, whatever the app does short of writing.
    for path in ("/untouched", "/read", "/logout"):
        await call_http(app, path=path)
    assert store.total == 0
    # A write without a cookie: one save.
    cookie = await login(app)
    assert store.calls == {"save": 1}

    store.calls.clear()
    await call_http(app, path="/read", headers=with_cookie(cookie))
    assert store.calls == {"load": 1}

    store.calls.clear()
    response = await call_http(app, path="/write", headers=with_cookie(cookie))
    assert store.calls == {"load": 1, "save": 1}
    assert cookie_of(response) == cookie  # same id, refreshed cookie


async def test_store_call_counts_lazy() -> None:
    store = CountingStore(MemoryStore())
    routes = {
        "/login": lambda s: _load_then(s, lambda sess: sess.update(user="ann")),
        "/read": lambda s: _load_then(s, lambda sess: sess.get("user")),
        "/write": lambda s: _load_then(s, lambda sess: sess.update(n=1)),
    }
    lazy = SessionMiddleware(_lazy_app(routes), SECRET, store=store, autoload=False)
    cookie = cookie_of(await call_http(lazy, path="/login"))
    assert cookie and store.calls == {"save": 1}
    for expected, path in (({}, "/untouched"), ({"load": 1}, "/read")):
        store.calls.clear()
        await call_http(lazy, path=path, headers=with_cookie(cookie))
        assert store.calls == expected, path
    store.calls.clear()
    await call_http(lazy, path="/write", headers=with_cookie(cookie))
    assert store.calls == {"load": 1, "save": 1}


async def _load_then(scope: Scope, action: Any) -> None:
    session = await load_session(scope)
    await load_session(scope)  # a second call is free
    action(session)


def _lazy_app(routes: dict[str, Any]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        action = routes.get(scope["path"])
        if action is not None:
            await action(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def test_forged_and_garbage_cookies_make_no_store_call() -> None:
    store = CountingStore(MemoryStore())
    app = make(store)
    cookie = await login(app)
    store.calls.clear()
    session_id = cookie.rsplit(".", 1)[0]
    for bad in (session_id, session_id + ".forged" + "x" * 37, "attacker-id", "", "a.b.c"):
        response = await call_http(app, path="/read", headers=with_cookie(bad))
        assert response.text == "{}"
    assert store.total == 0


async def test_a_forged_cookie_sent_first_does_not_hide_the_session() -> None:
    store = CountingStore(MemoryStore())
    app = make(store)
    cookie = await login(app)
    store.calls.clear()
    headers = {"cookie": f"session=attacker-id; session={cookie}"}
    response = await call_http(app, path="/read", headers=headers)
    assert json.loads(response.text) == {"user": "ann"}
    assert store.calls == {"load": 1}  # only the validly signed id reaches the store


# --------------------------------------------------------- fixation defence


async def test_unknown_or_expired_id_is_never_adopted() -> None:
    inner = MemoryStore()
    app = make(inner)
    cookie = await login(app)
    session_id = cookie.rsplit(".", 1)[0]
    await inner.delete(session_id)  # expired / evicted / logged out elsewhere
    response = await call_http(app, path="/write", headers=with_cookie(cookie))
    new_cookie = cookie_of(response)
    assert new_cookie and new_cookie != cookie
    assert await inner.load(session_id) is None
    assert await inner.load(new_cookie.rsplit(".", 1)[0]) == {"n": 1}


async def test_regenerate_id_rotates_and_deletes_the_old_record() -> None:
    store = CountingStore(MemoryStore())
    app = make(store)
    cookie = await login(app)
    store.calls.clear()
    response = await call_http(app, path="/regenerate", headers=with_cookie(cookie))
    new_cookie = cookie_of(response)
    assert new_cookie and new_cookie != cookie
    assert store.calls == {"load": 1, "delete": 1, "save": 1}
    assert await store.inner.load(cookie.rsplit(".", 1)[0]) is None
    assert await store.inner.load(new_cookie.rsplit(".", 1)[0]) == {"user": "ann"}
    # The old cookie no longer opens the session.
    assert (await call_http(app, path="/read", headers=with_cookie(cookie))).text == "{}"


async def test_clear_deletes_the_record_and_expires_the_cookie() -> None:
    store = CountingStore(MemoryStore())
    app = make(store)
    cookie = await login(app)
    store.calls.clear()
    response = await call_http(app, path="/logout", headers=with_cookie(cookie))
    assert "Max-Age=0" in (response.header("set-cookie") or "")
    assert store.calls == {"load": 1, "delete": 1}
    assert len(store.inner) == 0  # type: ignore[arg-type]


async def test_clear_then_write_uses_a_new_id() -> None:
    store = MemoryStore()
    app = make(store)
    cookie = await login(app)
    response = await call_http(app, path="/relogin", headers=with_cookie(cookie))
    new_cookie = cookie_of(response)
    assert new_cookie and new_cookie != cookie
    assert await store.load(cookie.rsplit(".", 1)[0]) is None
    assert await store.load(new_cookie.rsplit(".", 1)[0]) == {"user": "bob"}


async def test_session_ids_are_random_and_long() -> None:
    app = make(MemoryStore())
    ids = {(await login(app)).rsplit(".", 1)[0] for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) >= 43 for i in ids)  # 32 random bytes, base64url


async def test_rolling_touches_and_resends() -> None:
    store = CountingStore(MemoryStore())
    app = make(store, rolling=True)
    cookie = await login(app)
    store.calls.clear()
    response = await call_http(app, path="/read", headers=with_cookie(cookie))
    assert cookie_of(response) == cookie
    assert store.calls == {"load": 1, "touch": 1}
    store.calls.clear()
    assert cookie_of(await call_http(app, path="/read")) is None
    assert store.total == 0


async def test_key_rotation_for_session_ids() -> None:
    store = MemoryStore()
    old = SessionMiddleware(action_app(ROUTES), "old-key", store=store)
    rotated = SessionMiddleware(action_app(ROUTES), ["new-key", "old-key"], store=store)
    cookie = await login(old)
    response = await call_http(rotated, path="/read", headers=with_cookie(cookie))
    assert json.loads(response.text) == {"user": "ann"}
    only_new = SessionMiddleware(action_app(ROUTES), "new-key", store=store)
    assert (await call_http(only_new, path="/read", headers=with_cookie(cookie))).text == "{}"


# ----------------------------------------------------------- store failures


async def test_store_outage_degrades_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    good = make(MemoryStore())
    cookie = await login(good)
    app = make(FailingStore())
    with caplog.at_level(logging.ERROR, logger="asgi_kit.sessions"):
        response = await call_http(app, path="/read", headers=with_cookie(cookie))
        assert response.status == 200 and response.text == "{}"
        response = await call_http(app, path="/login")
        assert response.status == 200 and response.header("set-cookie") is None
        response = await call_http(app, path="/logout", headers=with_cookie(cookie))
        assert response.status == 200
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "failed to load" in messages and "failed to save" in messages


async def test_websocket_loads_the_server_side_session() -> None:
    store = CountingStore(MemoryStore())
    app_http = make(store)
    cookie = await login(app_http)
    store.calls.clear()

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(dict(scope["session"]))})
        await send({"type": "websocket.close", "code": 1000})

    app = SessionMiddleware(ws_app, SECRET, store=store)
    async with websocket(app, headers=with_cookie(cookie)) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output())["type"] == "websocket.accept"
        assert json.loads((await ws.receive_output())["text"]) == {"user": "ann"}
    assert store.calls == {"load": 1}


# --------------------------------------------------------------- MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_expires_and_is_bounded() -> None:
    clock = FakeClock()
    store = MemoryStore(max_entries=3, clock=clock)
    await store.save("a", {"v": 1}, 10)
    clock.now += 5
    assert await store.load("a") == {"v": 1}
    clock.now += 6
    assert await store.load("a") is None
    assert len(store) == 0
    for key in "bcde":
        await store.save(key, {"k": key}, 100)
    assert len(store) == 3 and await store.load("b") is None  # evicted, closest to expiry
    # Expired records are purged on write, not only on read.
    clock.now += 101
    await store.save("f", {}, 100)
    assert len(store) == 1


async def test_memory_store_touch_default_ttl_and_snapshots() -> None:
    clock = FakeClock()
    store = MemoryStore(default_ttl=50, clock=clock)
    data: dict[str, Any] = {"cart": []}
    await store.save("a", data, None)
    data["cart"].append("x")  # mutating after save does not change the record
    assert await store.load("a") == {"cart": []}
    clock.now += 40
    await store.touch("a", None)
    clock.now += 40
    assert await store.load("a") == {"cart": []}
    await store.touch("missing", 10)
    assert await store.load("missing") is None
    with pytest.raises(TypeError):
        await store.save("b", {"x": object()}, 10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_entries": 0}, "max_entries"),
        ({"max_entries": "10"}, "max_entries"),
        ({"default_ttl": 0}, "default_ttl"),
    ],
)
def test_memory_store_validates_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MemoryStore(**kwargs)


async def test_default_touch_loads_and_saves() -> None:
    class Minimal(SessionStore):
        def __init__(self) -> None:
            self.saved: list[tuple[str, Any, int | None]] = []

        async def load(self, session_id: str) -> dict[str, Any] | None:
            return {"a": 1} if session_id == "known" else None

        async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
            self.saved.append((session_id, data, ttl))

        async def delete(self, session_id: str) -> None:
            pass

    store = Minimal()
    await store.touch("known", 30)
    await store.touch("unknown", 30)
    assert store.saved == [("known", {"a": 1}, 30)]


# ---------------------------------------------------------------- RedisStore


def redis_commands(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


@pytest.mark.redis
async def test_redis_store_ttl_keys_and_deletion(redis_url: str, sync_redis: redis.Redis) -> None:
    store = RedisStore(redis_url, prefix="test:")
    try:
        app = make(store, max_age=600)
        cookie = await login(app)
        session_id = cookie.rsplit(".", 1)[0]
        assert json.loads(sync_redis.get(f"test:{session_id}") or b"") == {"user": "ann"}
        assert 590 <= sync_redis.ttl(f"test:{session_id}") <= 600
        response = await call_http(app, path="/regenerate", headers=with_cookie(cookie))
        new_id = (cookie_of(response) or "").rsplit(".", 1)[0]
        assert sync_redis.exists(f"test:{session_id}") == 0
        assert sync_redis.exists(f"test:{new_id}") == 1
        new_cookie = cookie_of(response) or ""
        response = await call_http(app, path="/logout", headers=with_cookie(new_cookie))
        assert "Max-Age=0" in (response.header("set-cookie") or "")
        assert sync_redis.keys("test:*") == []
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_redis_store_browser_session_uses_default_ttl(
    redis_url: str, sync_redis: redis.Redis
) -> None:
    store = RedisStore(redis_url, default_ttl=120)
    try:
        cookie = await login(make(store, max_age=None))
        assert 110 <= sync_redis.ttl("session:" + cookie.rsplit(".", 1)[0]) <= 120
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_redis_command_counts(redis_url: str, sync_redis: redis.Redis) -> None:
    store = RedisStore(redis_url)
    try:
        app = make(store)
        cookie = await login(app)
        lazy = SessionMiddleware(
            _lazy_app({"/read": lambda s: _load_then(s, lambda x: x.get("user"))}),
            SECRET,
            store=store,
            autoload=False,
        )
        cases = [
            (lazy, "/untouched", {}),
            (app, "/untouched", {"get": 1}),
            (app, "/read", {"get": 1}),
            (lazy, "/read", {"get": 1}),
            (app, "/write", {"get": 1, "set": 1}),
        ]
        for middleware, path, expected in cases:
            sync_redis.config_resetstat()
            await call_http(middleware, path=path, headers=with_cookie(cookie))
            stats = redis_commands(sync_redis)
            counted = {k: v for k, v in stats.items() if k in {"get", "set", "del", "expire"}}
            assert counted == expected, (path, stats)
    finally:
        await store.aclose()


@pytest.mark.redis
def test_redis_store_from_url_survives_a_new_event_loop(redis_url: str) -> None:
    # Test clients (Starlette's TestClient, asyncio.run per test) run each
    # request on a new loop; pooled connections of the old loop must not be
    # reused there, or every other request loses its session.
    store = RedisStore(redis_url)
    app = make(store)
    cookie = asyncio.run(login(app))
    for _ in range(3):
        response = asyncio.run(call_http(app, path="/read", headers=with_cookie(cookie)))
        assert json.loads(response.text) == {"user": "ann"}
    response = asyncio.run(call_http(app, path="/write", headers=with_cookie(cookie)))
    assert cookie_of(response) == cookie
    asyncio.run(store.aclose())


async def test_a_hung_redis_costs_one_timeout_per_store_call() -> None:
    # A server that accepts and never answers (a stopped or overloaded Redis):
    # each store call waits `timeout` once; retrying a timed-out command would
    # only double the wait.  Reconnecting after a closed connection still retries.
    connections = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}", timeout=0.1)
    try:
        cookie = await login(make(MemoryStore()))  # a validly signed id
        response = await call_http(make(store), path="/write", headers=with_cookie(cookie))
        assert response.status == 200 and cookie_of(response) is None
        # One load, not retried after its timeout; and no save over a
        # session that could not be read.
        assert connections == 1
    finally:
        server.close()
        await store.aclose()


@pytest.mark.redis
async def test_two_app_instances_share_sessions(redis_url: str) -> None:
    first, second = RedisStore(redis_url), RedisStore(redis_url)
    try:
        worker_a, worker_b = make(first), make(second)
        cookie = await login(worker_a)
        response = await call_http(worker_b, path="/read", headers=with_cookie(cookie))
        assert json.loads(response.text) == {"user": "ann"}
        await call_http(worker_b, path="/write", headers=with_cookie(cookie))
        response = await call_http(worker_a, path="/read", headers=with_cookie(cookie))
        assert json.loads(response.text) == {"user": "ann", "n": 1}
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.redis
async def test_redis_outage_gives_empty_session_and_logged_errors(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(redis_server.url, timeout=0.5)
    try:
        app = make(store)
        cookie = await login(app)
        redis_server.stop()
        with caplog.at_level(logging.ERROR, logger="asgi_kit.sessions"):
            response = await call_http(app, path="/read", headers=with_cookie(cookie))
            assert response.status == 200 and response.text == "{}"
            response = await call_http(app, path="/login")
            assert response.status == 200 and response.header("set-cookie") is None
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "failed to load" in messages and "failed to save" in messages
        redis_server.start()
        # Redis came back empty (no persistence): a new login works again.
        cookie = await login(app)
        response = await call_http(app, path="/read", headers=with_cookie(cookie))
        assert json.loads(response.text) == {"user": "ann"}
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_redis_store_with_a_user_client(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = RedisStore(client, prefix="app:")
        cookie = await login(make(store))
        response = await call_http(make(store), path="/read", headers=with_cookie(cookie))
        assert json.loads(response.text) == {"user": "ann"}
        await store.aclose()  # does not close a client it did not create
        assert await client.ping()
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((object(),), {}, TypeError),
        (("redis://localhost",), {"prefix": 1}, TypeError),
        (("redis://localhost",), {"timeout": 0}, ValueError),
        (("redis://localhost",), {"default_ttl": -5}, ValueError),
    ],
)
def test_redis_store_validates_options(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        RedisStore(*args, **kwargs)


def test_redis_store_rejects_a_synchronous_client() -> None:
    # Its calls would block the event loop and then fail on every request.
    client = redis.Redis()
    try:
        with pytest.raises(TypeError, match="synchronous redis client"):
            RedisStore(client)  # type: ignore[arg-type]
    finally:
        client.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.binary(max_size=200)
    | st.builds(
        lambda a, b: a + b"." + b,
        st.binary(max_size=60),
        st.text(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
            min_size=43,
            max_size=43,
        ).map(str.encode),
    )
)
async def test_hostile_id_cookies_never_reach_the_store(value: bytes) -> None:
    store = CountingStore(MemoryStore())
    app = make(store)
    response = await call_http(app, path="/read", headers=[(b"cookie", b"session=" + value)])
    assert response.status == 200 and response.text == "{}"
    assert store.total == 0


def test_import_without_redis_installed() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import asgi_kit\n"
        "from asgi_kit import MemoryStore, SessionMiddleware\n"
        "SessionMiddleware(lambda s, r, w: None, 'k', store=MemoryStore())\n"
        "try:\n"
        "    asgi_kit.RedisStore('redis://localhost')\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "asgi-kit[redis]" in result.stdout
