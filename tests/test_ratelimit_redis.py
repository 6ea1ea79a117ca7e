"""RedisBackend against a real redis-server: atomicity, round trips, failures."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from asgi_kit.ratelimit import BackendError, RateLimitMiddleware, RedisBackend, Rule
from asgi_kit.ratelimit.backends.redis import REFUND_SHA, SCRIPT_SHA

from ._support.asgi import call_http
from ._support.redis import RedisServer

pytestmark = pytest.mark.redis


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    b = RedisBackend(redis_url, prefix="t:", timeout=2.0)
    try:
        yield b
    finally:
        await b.close()


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
async def test_each_algorithm_limits_and_reports(backend: RedisBackend, algorithm: str) -> None:
    rule = Rule("3/minute", algorithm=algorithm)  # type: ignore[arg-type]
    outcomes = [(await backend.hit([(rule, "c")]))[0] for _ in range(5)]
    assert [o.allowed for o in outcomes] == [True, True, True, False, False]
    assert [o.remaining for o in outcomes] == [2, 1, 0, 0, 0]
    expected_wait = {"gcra": 20, "sliding_window": 80, "fixed_window": 60}[algorithm]
    assert outcomes[3].retry_after == pytest.approx(expected_wait, abs=1)
    assert outcomes[3].reset == outcomes[3].retry_after


async def test_gcra_state_survives_float_formatting(backend: RedisBackend) -> None:
    # 7/minute: a non-integer emission interval (8.571428… s) stored as text.
    rule = Rule("7/minute")
    results = [(await backend.hit([(rule, "c")]))[0] for _ in range(8)]
    assert [o.allowed for o in results] == [True] * 7 + [False]
    assert results[-1].retry_after == pytest.approx(60 / 7, abs=0.5)


async def test_keys_expire_on_their_own(backend: RedisBackend, sync_redis: redis.Redis) -> None:
    rules = [
        Rule("5/minute", name="g"),
        Rule("5/minute", algorithm="sliding_window", name="s"),
        Rule("5/minute", algorithm="fixed_window", name="f"),
    ]
    await backend.hit([(rule, "client") for rule in rules])
    keys = sorted(k.decode() for k in sync_redis.keys("t:*"))
    assert keys == ["t:f:fixed_window:{client}", "t:g:gcra:{client}", "t:s:sliding_window:{client}"]
    for key in keys:
        ttl = sync_redis.pttl(key)
        assert 0 < ttl <= 120_000


async def test_denial_consumes_no_quota_of_other_rules(
    backend: RedisBackend, sync_redis: redis.Redis
) -> None:
    wide, narrow = Rule("5/minute"), Rule("1/minute", path="/x")
    assert all(o.allowed for o in await backend.hit([(wide, "k"), (narrow, "k")]))
    for _ in range(3):
        outcomes = await backend.hit([(wide, "k"), (narrow, "k")])
        assert [o.allowed for o in outcomes] == [True, False]
    (only,) = await backend.hit([(wide, "k")])
    assert only.remaining == 3


def _commandstats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_exactly_one_round_trip_per_decision(redis_url: str, sync_redis: redis.Redis) -> None:
    client = aioredis.Redis.from_url(redis_url)
    sent: list[str] = []
    original = client.execute_command

    async def counting(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await original(*args, **kwargs)

    client.execute_command = counting  # type: ignore[method-assign]
    mw = RateLimitMiddleware(
        app,
        rules=[Rule("10/minute"), Rule("100/hour", algorithm="sliding_window")],
        backend=RedisBackend(client),
    )
    await call_http(mw, path="/warm-up")  # loads the script (NOSCRIPT -> EVAL) once
    sync_redis.config_resetstat()
    sent.clear()
    statuses = [(await call_http(mw)).status for _ in range(15)]
    assert statuses.count(200) == 9 and statuses.count(429) == 6
    assert sent == ["EVALSHA"] * 15
    stats = _commandstats(sync_redis)
    assert stats.get("evalsha") == 15
    assert "eval" not in stats
    await client.aclose()


async def test_noscript_falls_back_to_eval(backend: RedisBackend, sync_redis: redis.Redis) -> None:
    rule = Rule("2/minute")
    assert (await backend.hit([(rule, "k")]))[0].allowed
    sync_redis.script_flush()
    assert not sync_redis.script_exists(SCRIPT_SHA)[0]
    assert (await backend.hit([(rule, "k")]))[0].allowed
    assert sync_redis.script_exists(SCRIPT_SHA)[0]  # cached again by EVAL
    assert not (await backend.hit([(rule, "k")]))[0].allowed


async def test_script_error_becomes_backend_error(
    backend: RedisBackend, sync_redis: redis.Redis
) -> None:
    rule = Rule("2/minute")
    sync_redis.rpush(backend.key_for(rule, "k"), "not a number")  # WRONGTYPE inside the script
    with pytest.raises(BackendError, match="WRONGTYPE"):
        await backend.hit([(rule, "k")])
    mw = RateLimitMiddleware(app, rules=[rule], backend=backend, on_backend_error="deny")
    with capture_logs() as logs:
        response = await call_http(mw, client=("k", 1))
    assert response.status == 503 and response.header("retry-after") == "1"
    assert len(logs) == 1 and "WRONGTYPE" in logs[0]["error"]


async def test_redis_killed_then_restarted(redis_server: RedisServer) -> None:
    rules = [Rule("2/minute")]
    backend = RedisBackend(redis_server.url, timeout=0.5)
    allow = RateLimitMiddleware(app, rules=rules, backend=backend)
    deny = RateLimitMiddleware(app, rules=rules, backend=backend, on_backend_error="deny")
    assert (await call_http(allow)).status == 200

    redis_server.stop()
    with capture_logs() as logs:
        started = time.monotonic()
        allowed = await call_http(allow)
        denied = await call_http(deny)
        elapsed = time.monotonic() - started
    assert allowed.status == 200 and allowed.header("ratelimit-limit") is None
    assert denied.status == 503 and denied.header("retry-after") == "1"
    assert elapsed < 2 * 0.5 + 1.0  # bounded by the timeout, never a hang
    assert len(logs) == 2 and all(e["log_level"] == "error" for e in logs)

    redis_server.start()
    # Limiting resumes (the restarted server has no state and no cached script).
    statuses = [(await call_http(deny)).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    await backend.close()


async def test_unresponsive_redis_is_bounded_by_the_timeout() -> None:
    # A server that accepts connections and never answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        backend = RedisBackend(f"redis://127.0.0.1:{port}/0", timeout=0.3)
        mw = RateLimitMiddleware(app, rules=[Rule("1/minute")], backend=backend)
        with capture_logs() as logs:
            started = time.monotonic()
            response = await asyncio.wait_for(call_http(mw), 5)
            elapsed = time.monotonic() - started
        assert response.status == 200  # on_backend_error="allow"
        assert elapsed < 2.0
        assert len(logs) == 1 and "0.3" in logs[0]["error"]
    finally:
        listener.close()


async def test_cluster_key_layout_uses_hash_tags(backend: RedisBackend) -> None:
    from redis.crc import key_slot

    a = backend.key_for(Rule("1/second"), "203.0.113.9")
    b = backend.key_for(Rule("5/minute", path="/login"), "203.0.113.9")
    assert a != b
    assert key_slot(a.encode()) == key_slot(b.encode())


def test_url_backend_survives_a_new_event_loop(redis_url: str) -> None:
    # Test clients (Starlette's TestClient, asyncio.run per test) run each
    # request on a new loop; pooled connections of the old loop must not be
    # reused there, or every other request fails over to on_backend_error.
    mw = RateLimitMiddleware(
        app, rules=[Rule("3/minute")], backend=RedisBackend(redis_url), on_backend_error="deny"
    )
    statuses = [asyncio.run(call_http(mw)).status for _ in range(5)]
    asyncio.run(mw.backend.close())  # from yet another loop: no error
    assert statuses == [200, 200, 200, 429, 429]


def test_options_validated(redis_url: str) -> None:
    with pytest.raises(ValueError, match="timeout"):
        RedisBackend(redis_url, timeout=0)
    with pytest.raises(TypeError, match="prefix"):
        RedisBackend(redis_url, prefix=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="url_or_client"):
        RedisBackend(42)  # type: ignore[arg-type]
    # A blocking client would stall the event loop on every request, then fail.
    sync_client = redis.Redis.from_url(redis_url)
    try:
        with pytest.raises(TypeError, match="synchronous redis client"):
            RedisBackend(sync_client)  # type: ignore[arg-type]
    finally:
        sync_client.close()


async def test_cluster_mode_decides_one_slot_per_call(redis_url: str) -> None:
    # A standalone server stands in for a cluster: the backend must split keys
    # by hash slot (one script per slot) when it talks to a RedisCluster.
    client = aioredis.Redis.from_url(redis_url)
    calls: list[tuple[str, list[str]]] = []
    backend = RedisBackend(client)
    original = backend._run

    def counting(script: str, sha: str, keys: list[str], args: list[int]) -> Any:
        calls.append((sha, keys))
        return original(script, sha, keys, args)

    backend._run = counting  # type: ignore[method-assign]
    backend._cluster = True
    by_ip, by_user = Rule("1/minute", name="ip"), Rule("5/minute", name="user")
    await backend.hit([(by_ip, "203.0.113.1")])  # loads the script
    calls.clear()
    outcomes = await backend.hit([(by_ip, "203.0.113.2"), (by_user, "alice")])
    assert [o.allowed for o in outcomes] == [True, True]
    assert len(calls) == 2 and all(len(c[1]) == 1 for c in calls)  # one key per call
    # Same client key for both rules: one slot, one call.
    calls.clear()
    await backend.hit([(by_ip, "carol"), (by_user, "carol")])
    assert len(calls) == 1
    # The first slot denies: the second slot admitted, so it is refunded (one
    # more call) and reports what it had left before this request.
    calls.clear()
    outcomes = await backend.hit([(by_ip, "203.0.113.2"), (by_user, "alice")])
    assert [o.allowed for o in outcomes] == [False, True]
    assert outcomes[1].remaining == 4
    assert len(calls) == 3 and calls[2][0] == REFUND_SHA
    (alone,) = await backend.hit([(by_user, "alice")])
    assert alone.remaining == 3  # the denied request consumed nothing
    await client.aclose()


async def test_2000_decisions_in_flight_on_one_url_backend_admit_exactly_the_limit(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Far more decisions in flight than the pool has connections: the burst
    # waits for a connection instead of failing over to on_backend_error.
    backend = RedisBackend(redis_url, timeout=30.0)
    mw = RateLimitMiddleware(
        app, rules=[Rule("100/hour")], backend=backend, on_backend_error="deny"
    )
    try:
        with capture_logs() as logs:
            responses = await asyncio.gather(
                *(call_http(mw, client=("203.0.113.7", 1)) for _ in range(2000))
            )
    finally:
        await backend.close()
    statuses = [r.status for r in responses]
    assert statuses.count(200) == 100
    assert statuses.count(429) == 1900
    assert logs == [] and not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_small_pool_serves_a_burst_without_errors(
    redis_url: str, sync_redis: redis.Redis
) -> None:
    # Connections left open by earlier tests on the shared server are not ours.
    before = {c["id"] for c in sync_redis.client_list()}
    backend = RedisBackend(redis_url, timeout=30.0, max_connections=3)
    rule = Rule("50/minute", algorithm="fixed_window")
    try:
        outcomes = await asyncio.gather(*(backend.hit([(rule, "k")]) for _ in range(300)))
        clients = [
            c
            for c in sync_redis.client_list()
            if c.get("cmd") != "client|list" and c["id"] not in before
        ]
    finally:
        await backend.close()
    assert sum(o[0].allowed for o in outcomes) == 50
    assert len(clients) <= 3  # never more connections than the pool size


async def test_a_users_client_with_a_small_pool_is_not_overrun(redis_url: str) -> None:
    # redis-py's own pool raises MaxConnectionsError past max_connections;
    # the backend never puts more decisions in flight than that pool holds.
    client = aioredis.Redis.from_url(redis_url, max_connections=4)
    backend = RedisBackend(client, timeout=30.0)
    rule = Rule("10/minute")
    try:
        outcomes = await asyncio.gather(*(backend.hit([(rule, "k")]) for _ in range(400)))
    finally:
        await client.aclose()
    assert sum(o[0].allowed for o in outcomes) == 10


def test_pool_size_option_validated(redis_url: str) -> None:
    with pytest.raises(ValueError, match="max_connections"):
        RedisBackend(redis_url, max_connections=0)
    with pytest.raises(TypeError, match="max_connections"):
        RedisBackend(redis_url, max_connections="9")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout"):
        RedisBackend(redis_url, timeout="1")  # type: ignore[arg-type]


async def test_a_burst_after_script_flush_is_decided_not_failed(
    backend: RedisBackend, sync_redis: redis.Redis
) -> None:
    # Concurrent decisions go out together; every one of them meets NOSCRIPT
    # and is decided again with EVAL, within the same decision.
    rule = Rule("100/hour")
    await backend.hit([(rule, "warm")])
    sync_redis.script_flush()
    outcomes = await asyncio.gather(*(backend.hit([(rule, "k")]) for _ in range(300)))
    assert sum(o[0].allowed for o in outcomes) == 100
    assert sync_redis.script_exists(SCRIPT_SHA)[0]


async def test_an_error_reply_fails_only_its_own_decision(
    backend: RedisBackend, sync_redis: redis.Redis
) -> None:
    rule = Rule("100/hour")
    sync_redis.rpush(backend.key_for(rule, "broken"), "x")  # WRONGTYPE for this client only
    keys = ["broken" if i % 10 == 0 else f"ok{i}" for i in range(200)]
    results = await asyncio.gather(
        *(backend.hit([(rule, k)]) for k in keys), return_exceptions=True
    )
    failed = [k for k, r in zip(keys, results, strict=True) if isinstance(r, BaseException)]
    assert failed == ["broken"] * 20
    assert all(isinstance(r, BackendError) and "WRONGTYPE" in str(r) for r in results[::10])
    assert all(r[0].allowed for r in results if not isinstance(r, BaseException))  # type: ignore[index]
