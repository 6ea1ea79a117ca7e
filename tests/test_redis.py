"""Redis URL schemes and the connection gate (asgi_kit._redis)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from asgi_kit._redis import LoopBoundClient, client_from_url, pool_limit


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/2",
        "rediss://user:pw@localhost:6380/0",
        "unix:///run/redis.sock?db=1",
    ],
)
def test_plain_schemes_give_a_redis_client(url: str) -> None:
    client = client_from_url(url, 0.5, 7)
    assert type(client) is aioredis.Redis
    pool = client.connection_pool
    assert pool.max_connections == 7
    assert pool.connection_kwargs["socket_timeout"] == 0.5
    assert pool.connection_kwargs["socket_connect_timeout"] == 0.5


def test_cluster_url_seeds_every_node() -> None:
    client = client_from_url("redis+cluster://:secret@10.0.0.1:7000,10.0.0.2,[::1]:7002", 0.5, 9)
    assert isinstance(client, RedisCluster)
    seeds = [(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()]
    assert sorted(seeds) == [("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)]
    assert pool_limit(client, 50) == 9  # per node, as redis-py counts it
    assert pool_limit(RedisCluster(host="localhost"), 500) == 100  # redis-py's own cap


def test_sentinel_url_gives_a_master_client() -> None:
    client = client_from_url("redis+sentinel://:pw@10.0.0.1:26380,10.0.0.2/cache/3", 0.5, 11)
    pool = client.connection_pool
    assert pool.service_name == "cache" and pool.is_master
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in pool.sentinel_manager.sentinels
    ] == [("10.0.0.1", 26380), ("10.0.0.2", 26379)]
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["password"] == "pw"
    assert pool.max_connections == 11


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("localhost:6379", "scheme"),
        ("http://localhost", "unsupported"),
        ("redis+sentinel://localhost:26379", "service"),
        ("redis+sentinel://localhost:26379/a/b/c", "service"),
        ("redis+sentinel://localhost/svc/x", "database"),
        ("redis+cluster://host:port", "port"),
        ("redis+cluster://", "no host"),
    ],
)
def test_bad_urls_name_the_problem(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        client_from_url(url, 1.0, 5)


async def test_the_gate_is_per_loop_and_bounds_concurrency() -> None:
    holder = LoopBoundClient(object(), None, 3)
    gate = holder.gate()
    assert holder.gate() is gate
    inside = peak = 0

    async def one() -> None:
        nonlocal inside, peak
        async with holder.gate():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(50)))
    assert peak == 3
    other = await asyncio.to_thread(lambda: asyncio.run(_gate_of(holder)))
    assert other is not gate  # a new loop gets its own semaphore


async def _gate_of(holder: LoopBoundClient) -> asyncio.Semaphore:
    return holder.gate()


def test_missing_redis_tools_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from ._support.redis import require_tools

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and redis-sentinel"):
        require_tools("redis-sentinel")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="redis-sentinel"):
        require_tools("redis-sentinel")
