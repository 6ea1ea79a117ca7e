"""Shared fixtures: real Redis, real servers, in-process drivers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from ._support.redis import (
    RedisClusterSet,
    RedisServer,
    SentinelSet,
    flushall,
    in_ci,
    redis_binary,
    require_tools,
)
from ._support.servers import SERVERS, LiveServerFactory


@pytest.fixture(autouse=True)
def _structlog_as_found() -> Iterator[None]:
    """Give each test structlog as the test before it found it.

    Tests and docs snippets call ``structlog.configure``; asgi_kit's code
    asks ``structlog.is_configured()`` to choose where to log, so a
    configuration left behind would change what later tests observe.
    """
    configured, config = structlog.is_configured(), structlog.get_config()
    yield
    if configured:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()


@pytest.fixture(scope="session")
def _redis_server_url() -> Iterator[str]:
    env_url = os.environ.get("REDIS_URL")
    if env_url:
        yield env_url
        return
    if redis_binary() is None:
        reason = "redis-server is not installed (Debian: apt-get install redis-server)"
        if in_ci():
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    server = RedisServer()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def redis_url(_redis_server_url: str) -> str:
    """URL of a real, empty Redis database (``REDIS_URL`` overrides)."""
    flushall(_redis_server_url)
    return _redis_server_url


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[Any]:
    """A synchronous redis client on the test database, to inspect what was written."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server that the test may stop and restart."""
    if redis_binary() is None:
        reason = "redis-server is not installed (Debian: apt-get install redis-server)"
        if in_ci():
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    server = RedisServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def _cluster_set() -> Iterator[RedisClusterSet]:
    require_tools("redis-server", "redis-cli")
    cluster = RedisClusterSet()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def redis_cluster(_cluster_set: RedisClusterSet) -> RedisClusterSet:
    """A local Redis Cluster (3 masters + 3 replicas), healthy and empty.

    Started once per session; a test may kill a master (``fail_over``): the
    next test waits until the cluster is whole again.
    """
    for port, node in _cluster_set.nodes.items():
        if not node.running:
            _cluster_set.restart(port)
    _cluster_set.wait_healthy()
    _cluster_set.flushall()
    return _cluster_set


@pytest.fixture(scope="session")
def _sentinel_set() -> Iterator[SentinelSet]:
    require_tools("redis-server", "redis-sentinel")
    sentinels = SentinelSet()
    try:
        yield sentinels
    finally:
        sentinels.close()


@pytest.fixture
def redis_sentinel(_sentinel_set: SentinelSet) -> SentinelSet:
    """1 master, 1 replica and 3 sentinels, healthy and empty (started once per session)."""
    for port, server in _sentinel_set.servers.items():
        if not server.running:
            _sentinel_set.restart(port)
    _sentinel_set.wait_healthy()
    _sentinel_set.flushall()
    return _sentinel_set


@pytest.fixture(params=["cluster", "sentinel"])
def deployment(request: pytest.FixtureRequest) -> RedisClusterSet | SentinelSet:
    """Each distributed deployment in turn: Redis Cluster, then Sentinel."""
    name = "redis_cluster" if request.param == "cluster" else "redis_sentinel"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(params=SERVERS)
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServerFactory]:
    """Start ASGI apps under Uvicorn, Hypercorn, Daphne and Granian (one param each).

    ``proc = live_server("module:app")`` returns a running server with
    ``proc.url`` and ``proc.ws_url``; every server started is stopped after
    the test.
    """
    factory = LiveServerFactory(request.param)
    try:
        yield factory
    finally:
        factory.close()
