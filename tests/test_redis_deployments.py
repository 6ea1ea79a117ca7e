"""RedisBackend and RedisStore on Redis Cluster and Sentinel: exact limits, sessions, failover.

Real deployments started by the fixtures (``redis_cluster``: 3 masters + 3
replicas; ``redis_sentinel``: 1 master, 1 replica, 3 sentinels).  The
failover tests come last: they crash a master, and the next test using that
deployment waits until it is whole again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from structlog.testing import capture_logs

from asgi_kit import RateLimitMiddleware, RedisBackend, RedisStore, Rule, SessionMiddleware

from ._support.asgi import call_http
from ._support.redis import RedisClusterSet, SentinelSet
from ._support.servers import ServerProcess
from .test_ratelimit_e2e import _blast, _wait_for_all_workers

pytestmark = pytest.mark.redis

Deployment = RedisClusterSet | SentinelSet
HEADERS = [(b"Content-Type", b"text/plain")]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
SECRET = "example-secret-key"


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send(START)
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b"ok"})


async def session_app(scope: Any, receive: Any, send: Any) -> None:
    session = scope["session"]
    if scope["path"] == "/login":
        session["user"] = scope["query_string"].decode()
    body = json.dumps({"user": session.get("user"), "unavailable": session.unavailable})
    await send(START)
    await send({"type": "http.response.body", "body": body.encode()})


def user_key(scope: Any) -> str:
    return dict(scope["headers"]).get(b"x-user", b"").decode() or "anonymous"


def cookie_of(response: Any) -> str:
    header = response.header("set-cookie")
    assert header, response.headers
    return str(header.split(";", 1)[0].split("=", 1)[1])


async def test_2000_decisions_in_flight_admit_exactly_the_limit(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    for source in (deployment.url, deployment.async_client()):
        backend = RedisBackend(source, timeout=30.0)
        mw = RateLimitMiddleware(
            app, rules=[Rule("100/hour")], backend=backend, on_backend_error="deny"
        )
        client = ("203.0.113.7", 1) if isinstance(source, str) else ("203.0.113.8", 1)
        with capture_logs() as logs:
            responses = await asyncio.gather(*(call_http(mw, client=client) for _ in range(2000)))
        statuses = [r.status for r in responses]
        assert (statuses.count(200), statuses.count(429)) == (100, 1900), source
        assert logs == []
        await backend.close()
        if not isinstance(source, str):
            await source.aclose()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_rules_in_different_slots_charge_nothing_when_one_denies(
    redis_cluster: RedisClusterSet,
) -> None:
    # Per-IP and per-user rules hash to different slots (different hash tags):
    # each slot is decided by its own script; a denial refunds the others.
    backend = RedisBackend(redis_cluster.url, timeout=30.0)
    by_ip = Rule("10/hour", name="ip", algorithm="fixed_window")
    by_user = Rule("1000/hour", name="user", key=user_key, algorithm="fixed_window")
    from redis.crc import key_slot

    assert key_slot(backend.key_for(by_ip, "203.0.113.9").encode()) != key_slot(
        backend.key_for(by_user, "alice").encode()
    )
    mw = RateLimitMiddleware(app, rules=[by_ip, by_user], backend=backend)
    responses = await asyncio.gather(
        *(call_http(mw, client=("203.0.113.9", 1), headers={"x-user": "alice"}) for _ in range(300))
    )
    assert sum(r.status == 200 for r in responses) == 10
    # The user's rule was charged for the 10 admitted requests only.
    (alone,) = await backend.hit([(by_user, "alice")])
    assert alone.remaining == 1000 - 10 - 1
    await backend.close()


async def test_lost_script_cache_is_recovered_on_the_same_decision(
    deployment: Deployment,
) -> None:
    backend = RedisBackend(deployment.url, timeout=30.0)
    rule = Rule("2/minute")
    mw = RateLimitMiddleware(app, rules=[rule], backend=backend, on_backend_error="deny")
    assert (await call_http(mw)).status == 200
    deployment.script_flush()
    with capture_logs() as logs:
        statuses = [(await call_http(mw)).status for _ in range(2)]
    assert statuses == [200, 429]  # decided, not failed over to "deny" (503)
    assert logs == []
    await backend.close()


async def test_sessions_shared_and_concurrent(deployment: Deployment) -> None:
    store = RedisStore(deployment.url, timeout=30.0)
    mw = SessionMiddleware(session_app, SECRET, store=store)
    users = [f"u{i}" for i in range(500)]
    logins = await asyncio.gather(
        *(call_http(mw, path="/login", query_string=u.encode()) for u in users)
    )
    reads = await asyncio.gather(
        *(call_http(mw, headers={"cookie": f"session={cookie_of(r)}"}) for r in logins)
    )
    assert [json.loads(r.text)["user"] for r in reads] == users
    await store.aclose()


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_four_uvicorn_workers_share_one_exact_limit(deployment: Deployment) -> None:
    server = ServerProcess(
        "uvicorn",
        "tests.apps.ratelimit_app:app",
        env={"REDIS_URL": deployment.url},
        args=["--workers", "4"],
    )
    try:
        _wait_for_all_workers(server.url)
        responses = await _blast([f"{server.url}/sliding"], 1000)
    finally:
        server.stop()
    statuses = [r.status_code for r in responses]
    assert (statuses.count(200), statuses.count(429)) == (100, 900)
    ok = [r for r in responses if r.status_code == 200]
    assert sorted(int(r.headers["ratelimit-remaining"]) for r in ok) == list(range(100))
    # Several workers answered; had each kept its own count, each would have
    # admitted 100.
    assert len({r.headers["x-worker-pid"] for r in responses}) >= 2


async def test_closing_a_sentinel_url_store_closes_its_sentinel_connections(
    redis_sentinel: SentinelSet,
) -> None:
    import redis

    def clients() -> int:
        counts = []
        for port in redis_sentinel.sentinel_ports:
            admin = redis.Redis(host="127.0.0.1", port=port)
            try:
                counts.append(len(admin.client_list()) - 1)  # minus this one
            finally:
                admin.close()
        return sum(counts)

    before = clients()
    store = RedisStore(redis_sentinel.url, timeout=30.0)
    await store.save("probe", {"a": 1}, 60)
    assert clients() > before
    await store.aclose()
    await _until(lambda: clients() == before, timeout=20)  # the server sees the close


# ------------------------------------------------------------------ failover (last)


@pytest.mark.timeout(300)
async def test_master_killed_mid_traffic(deployment: Deployment) -> None:
    ip = "198.51.100.1"
    rule = Rule("1000/minute")
    # The traffic's backend fails fast; the checks before and after use a
    # patient one, so a slow answer on a loaded machine is never mistaken
    # for an outage (or, with "allow", for an admission).
    backend = RedisBackend(deployment.url, timeout=1.0)
    patient = RedisBackend(deployment.url, timeout=30.0)
    store = RedisStore(deployment.url, timeout=30.0)
    sessions = SessionMiddleware(session_app, SECRET, store=store)
    deny = RateLimitMiddleware(app, rules=[rule], backend=backend, on_backend_error="deny")
    try:
        cookie = cookie_of(await call_http(sessions, path="/login", query_string=b"ann"))
        await patient.hit([(rule, ip)])

        stop = asyncio.Event()
        statuses: list[int] = []

        async def traffic() -> None:
            # Steady traffic while the master dies: every request gets an
            # answer (200 or 503), never an exception, never a hang.
            while not stop.is_set():
                response = await asyncio.wait_for(call_http(deny, client=(ip, 1)), 30)
                statuses.append(response.status)
                await asyncio.sleep(0.01)

        runner = asyncio.ensure_future(traffic())
        try:
            await _until(lambda: len(statuses) >= 5)
            old = await asyncio.to_thread(deployment.fail_over, patient.key_for(rule, ip))
            await _until(lambda: 503 in statuses)  # the outage is seen: on_backend_error
            await asyncio.to_thread(deployment.wait_promoted, old)
            # Limiting resumes by itself (no restart, no new client): requests
            # are decided again, on the promoted replica.
            mark = len(statuses)
            await _until(lambda: statuses[mark:][-20:].count(200) == 20, timeout=90)
        finally:
            stop.set()
            await runner
        assert set(statuses) <= {200, 503}

        # Exact again after the failover (the new master has no script cached).
        fresh = RateLimitMiddleware(
            app, rules=[Rule("5/hour", name="after")], backend=patient, on_backend_error="deny"
        )
        results = await asyncio.gather(*(call_http(fresh, client=(ip, 1)) for _ in range(50)))
        assert sorted(r.status for r in results) == [200] * 5 + [429] * 45
        # The session written before the failover is still there.
        response = await call_http(sessions, headers={"cookie": f"session={cookie}"})
        assert json.loads(response.text) == {"user": "ann", "unavailable": False}
    finally:
        await backend.close()
        await patient.close()
        await store.aclose()


async def _until(condition: Any, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
