"""Redis rate limiting under a burst: 2,000 decisions in flight on one worker.

Each candidate decides ``BURST`` requests started at once (``asyncio.gather``)
on one event loop against one real ``redis-server`` (``REDIS_URL``, or one
started here), spread over ``KEYS`` clients so no request is denied.  For
each candidate: the median over rounds of the p50 and p99 decision latency
(from the start of the burst to each decision's answer), the round trips
per decision (commands and pipelines redis-py writes to its sockets), the
scripts and all commands the server ran per decision (``INFO
commandstats`` after ``CONFIG RESETSTAT``; the latter counts the commands a
script runs inside Redis), and how many decisions failed (for example redis-py's
``MaxConnectionsError`` when a default pool of 100 connections runs dry).

Candidates: asgi_kit's ``RedisBackend`` built from a URL; asgi-ratelimit's
``RedisBackend`` on a ``redis.asyncio`` client from a URL (as its README
shows) and on a blocking pool of the same size as ours; limits' async Redis
storage (what slowapi is built on; redis-py implementation) with its
fixed-window limiter, slowapi's default, as configured from a URL and on a
blocking pool of the same size as ours.

Run: ``python -m benchmarks.bench_ratelimit_redis`` (or ``python -m
benchmarks ratelimit_redis``).  The numbers compare candidates within one
run; on a loaded machine they are rough.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .driver import Scenario

BURST = 2000
KEYS = 200
ROUNDS = 5
POOL = 50

Decide = Callable[[int], Awaitable[Any]]


def scenarios() -> list[Scenario]:
    return []  # not per-request overhead: see report()


async def _ours(url: str) -> tuple[Decide, Callable[[], Awaitable[None]]]:
    from asgi_kit.ratelimit import RedisBackend, Rule

    backend = RedisBackend(url, timeout=30.0, max_connections=POOL)
    rule = Rule("1000000/minute")

    async def decide(i: int) -> Any:
        return await backend.hit([(rule, f"client-{i % KEYS}")])

    return decide, backend.close


async def _asgi_ratelimit(url: str, blocking: bool) -> tuple[Decide, Callable[[], Awaitable[None]]]:
    import redis.asyncio as aioredis
    from ratelimit import Rule as ARRule
    from ratelimit.backends.redis import RedisBackend as ARRedis

    if blocking:
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=POOL, timeout=30)
        client = aioredis.Redis(connection_pool=pool)
    else:
        client = aioredis.Redis.from_url(url)
    backend = ARRedis(client)
    rule = ARRule(minute=1_000_000)

    async def decide(i: int) -> Any:
        return await backend.retry_after("/", f"client-{i % KEYS}", rule)

    return decide, client.aclose


async def _limits(url: str, blocking: bool) -> tuple[Decide, Callable[[], Awaitable[None]]]:
    import redis.asyncio as aioredis
    from limits import parse
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import FixedWindowRateLimiter

    options: dict[str, Any] = {}
    if blocking:
        options["connection_pool"] = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL, timeout=30
        )
    storage = RedisStorage(
        url.replace("redis://", "async+redis://", 1), implementation="redispy", **options
    )
    limiter = FixedWindowRateLimiter(storage)
    item = parse("1000000/minute")

    async def decide(i: int) -> Any:
        return await limiter.hit(item, f"client-{i % KEYS}")

    async def close() -> None:
        return None  # the storage owns its pool; nothing to close

    return decide, close


CANDIDATES: dict[str, Callable[[str], Awaitable[tuple[Decide, Callable[[], Awaitable[None]]]]]] = {
    f"asgi_kit RedisBackend (max_connections={POOL})": _ours,
    "asgi-ratelimit RedisBackend (Redis.from_url)": lambda url: _asgi_ratelimit(url, False),
    f"asgi-ratelimit RedisBackend (blocking pool of {POOL})": lambda url: _asgi_ratelimit(
        url, True
    ),
    "limits async Redis storage, fixed window (slowapi's)": lambda url: _limits(url, False),
    f"limits async Redis storage, blocking pool of {POOL}": lambda url: _limits(url, True),
}


async def _burst(decide: Decide) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0

    async def one(i: int, start: float) -> None:
        nonlocal failures
        try:
            await decide(i)
        except Exception:
            failures += 1
            return
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(i, start) for i in range(BURST)))
    return latencies, failures


def _server_counts(client: Any) -> tuple[int, int]:
    """(scripts run, all commands run) since CONFIG RESETSTAT, from INFO commandstats.

    "All commands" includes the commands a script runs inside Redis (TIME,
    GET, SET...), which cost no round trip; the client-side count of writes
    to the socket (``_Writes``) is the round trips.
    """
    stats = {
        k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()
    }
    for admin in ("info", "config|resetstat", "flushall"):
        stats.pop(admin, None)
    scripts = stats.get("evalsha", 0) + stats.get("eval", 0)
    return scripts, sum(stats.values())


class _Writes:
    """Counts what redis-py writes to sockets: one write per command or pipeline."""

    count = 0

    @classmethod
    def install(cls) -> None:
        from redis.asyncio.connection import AbstractConnection

        original = AbstractConnection.send_packed_command

        async def counted(self: Any, *args: Any, **kwargs: Any) -> None:
            cls.count += 1
            await original(self, *args, **kwargs)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


async def _measure(url: str) -> list[tuple[str, str]]:
    import redis

    _Writes.install()
    admin = redis.Redis.from_url(url)
    rows: list[tuple[str, str]] = []
    results: dict[str, dict[str, list[float]]] = {}
    built: dict[str, tuple[Decide, Callable[[], Awaitable[None]]]] = {}
    for name, factory in CANDIDATES.items():
        try:
            built[name] = await factory(url)
        except ImportError as exc:
            rows.append((name, f"not installed ({exc.name or exc})"))
            continue
        await built[name][0](0)  # warm-up: connection, script loaded
        results[name] = {
            "p50": [],
            "p99": [],
            "trips": [],
            "scripts": [],
            "commands": [],
            "failed": [],
        }
    names = list(results)
    for round_ in range(ROUNDS):
        # Rotate the order every round so no candidate always runs first.
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            admin.flushall()
            await built[name][0](0)  # re-load a script the flush dropped
            admin.config_resetstat()
            _Writes.count = 0
            latencies, failures = await _burst(built[name][0])
            trips = _Writes.count / BURST
            scripts, commands = _server_counts(admin)
            latencies.sort()
            r = results[name]
            if latencies:
                r["p50"].append(latencies[len(latencies) // 2] * 1000)
                r["p99"].append(
                    latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
                )
            r["trips"].append(trips)
            r["scripts"].append(scripts / BURST)
            r["commands"].append(commands / BURST)
            r["failed"].append(failures)
    for name in names:
        await built[name][1]()
    admin.close()
    ours = statistics.median(results[names[0]]["p99"]) if results[names[0]]["p99"] else None
    out: list[tuple[str, str]] = []
    for name in names:
        r = results[name]
        p50 = statistics.median(r["p50"]) if r["p50"] else float("nan")
        p99 = statistics.median(r["p99"]) if r["p99"] else float("nan")
        failed = int(statistics.median(r["failed"]))
        # Latencies of a candidate whose decisions failed are those of the few
        # that got through: not comparable.
        ratio = f"{p99 / ours:.2f}x" if ours and not failed else "n/a"
        out.append(
            (
                name,
                f"| {p50:.0f} ms | {p99:.0f} ms | {ratio} | {statistics.median(r['trips']):.2f} "
                f"| {statistics.median(r['scripts']):.2f} | {statistics.median(r['commands']):.2f} "
                f"| {failed} of {BURST} |",
            )
        )
    return out + rows


def report() -> str:
    url = os.environ.get("REDIS_URL")
    server = None
    if not url:
        from tests._support.redis import RedisServer

        server = RedisServer()
        url = server.url
    try:
        rows = asyncio.run(_measure(url))
    finally:
        if server is not None:
            server.close()
    lines = [
        f"{BURST} decisions in flight at once on one event loop, {KEYS} clients, one "
        f"redis-server; median of {ROUNDS} rounds. p99 ratio: candidate / asgi_kit (n/a "
        "when decisions failed: then p50/p99 are those of the few that succeeded).",
        "",
        "| candidate | p50 | p99 | p99 ratio | round trips per decision | scripts per decision "
        "| server commands per decision (incl. inside scripts) | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, cells in rows:
        lines.append(
            f"| {name} {cells}" if cells.startswith("|") else f"| {name} | {cells} | | | | |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
    sys.exit(0)
