"""Sessions in Redis (``redis.asyncio``), shared by every worker and host."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from asgi_kit._backend_failures import DEFAULT_INTERVAL, check_interval, check_registry
from asgi_kit._redis import (
    DEFAULT_MAX_CONNECTIONS,
    bind_client,
    check_max_connections,
    check_timeout,
)

from .base import (
    DEFAULT_TTL,
    Serializer,
    SessionStore,
    check_positive_int,
    check_serializer,
    decode_record,
)

if TYPE_CHECKING:  # pragma: no cover
    from redis.asyncio import Redis, RedisCluster

__all__ = ["RedisStore"]


class RedisStore(SessionStore):
    """Keep sessions in Redis under ``prefix + session_id`` with a TTL.

    Needs the ``redis`` extra (``pip install 'asgi-kit[redis]'``); it is
    imported only when a ``RedisStore`` is created.  Every operation is a
    single command: ``GET`` to load, ``SET … EX ttl`` to save (the Redis TTL
    is the middleware's ``max_age``), ``DEL`` on clear/regenerate and
    ``EXPIRE`` for rolling sessions.  Data is serialised with JSON by default,
    never pickle.

    Args:
        url_or_client: A URL (``redis://``, ``rediss://``, ``unix://``,
            ``redis+cluster://host:port[,host:port]``,
            ``redis+sentinel://host:port[,host:port]/service_name``), or a
            ``redis.asyncio`` client you configured yourself (``Redis``,
            ``RedisCluster`` or a Sentinel's ``master_for()`` client; used as
            is; you close it).
        prefix: Prepended to every key.
        serializer: Turns the session into bytes and back (default: JSON).
        default_ttl: Lifetime in seconds when the middleware's ``max_age`` is None.
        timeout: Bound in seconds on each store call, including waiting for
            a pooled connection and connecting, so an unreachable Redis fails
            fast instead of stalling requests.
        max_connections: Connections a client built from a URL opens (per
            node on a cluster), and how many store calls are in flight on one
            client at once; a burst beyond it waits for a free connection
            within ``timeout`` instead of failing.
        registry: Where failures are counted (``asgi_kit_backend_failures_total``;
            None: prometheus_client's default REGISTRY).
        failure_log_interval: Seconds between summary log lines while the
            store keeps failing (the first failure is logged at once).
    """

    def __init__(
        self,
        url_or_client: str | Redis | RedisCluster,
        prefix: str = "session:",
        *,
        serializer: Serializer | None = None,
        default_ttl: int = DEFAULT_TTL,
        timeout: float = 2.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        registry: CollectorRegistry | None = None,
        failure_log_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {prefix!r}")
        self.timeout = check_timeout(timeout)
        self.max_connections = check_max_connections(max_connections)
        #: Where ``asgi_kit_backend_failures_total`` is counted (None: the default REGISTRY).
        self.registry = check_registry(registry)
        #: Seconds between summary log lines while Redis keeps failing.
        self.failure_log_interval = check_interval(failure_log_interval)
        self.prefix = prefix
        self.default_ttl = check_positive_int(default_ttl)
        self.serializer = check_serializer(serializer)
        try:
            self._redis = bind_client(url_or_client, self.timeout, self.max_connections)
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "RedisStore needs the redis package: pip install 'asgi-kit[redis]'"
            ) from exc
        if not callable(getattr(self._redis.client, "get", None)):
            raise TypeError("url_or_client must be a Redis URL or a redis.asyncio client")

    @property
    def client(self) -> Redis:
        """The ``redis.asyncio`` client in use (re-created per event loop when built from a URL)."""
        return self._redis.client  # type: ignore[no-any-return]

    async def _command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run one command within ``timeout``, waiting for a pooled connection."""
        return await asyncio.wait_for(self._gated(name, *args, **kwargs), self.timeout)

    async def _gated(self, name: str, *args: Any, **kwargs: Any) -> Any:
        client = self._redis.get()
        async with self._redis.gate():
            return await getattr(client, name)(*args, **kwargs)

    async def load(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._command("get", self.prefix + session_id)
        if raw is None:
            return None
        if isinstance(raw, str):  # a client created with decode_responses=True
            raw = raw.encode("utf-8")
        return decode_record(self.serializer, raw)

    async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
        raw = self.serializer.dumps(data)
        await self._command(
            "set", self.prefix + session_id, raw, ex=ttl if ttl is not None else self.default_ttl
        )

    async def delete(self, session_id: str) -> None:
        await self._command("delete", self.prefix + session_id)

    async def touch(self, session_id: str, ttl: int | None) -> None:
        await self._command(
            "expire", self.prefix + session_id, ttl if ttl is not None else self.default_ttl
        )

    async def aclose(self) -> None:
        """Close the client if this store created it from a URL."""
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"
