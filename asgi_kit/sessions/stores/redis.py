"""Sessions in Redis (``redis.asyncio``), shared by every worker and host."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .base import (
    DEFAULT_TTL,
    Serializer,
    SessionStore,
    check_positive_int,
    check_serializer,
    decode_record,
)

if TYPE_CHECKING:  # pragma: no cover
    from redis.asyncio import Redis

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
        url_or_client: A ``redis://`` URL, or a ``redis.asyncio.Redis`` client
            you configured yourself (used as is; you close it).
        prefix: Prepended to every key.
        serializer: Turns the session into bytes and back (default: JSON).
        default_ttl: Lifetime in seconds when the middleware's ``max_age`` is None.
        timeout: Socket connect/read timeout in seconds for a client created
            from a URL, so an unreachable Redis fails fast instead of
            stalling requests.
    """

    def __init__(
        self,
        url_or_client: str | Redis,
        prefix: str = "session:",
        *,
        serializer: Serializer | None = None,
        default_ttl: int = DEFAULT_TTL,
        timeout: float = 2.0,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {prefix!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.prefix = prefix
        self.default_ttl = check_positive_int(default_ttl)
        self.serializer = check_serializer(serializer)
        if _is_sync_client(url_or_client):
            raise TypeError(
                "url_or_client is a synchronous redis client, which would block the event "
                "loop: pass a redis.asyncio.Redis client or a redis:// URL"
            )
        self.owns_client = isinstance(url_or_client, str)
        self._url = url_or_client if isinstance(url_or_client, str) else None
        self._timeout = float(timeout)
        # The event loop the owned client's connections belong to (see _client).
        self._loop: asyncio.AbstractEventLoop | None = None
        self.client: Redis = (
            _client_from_url(url_or_client, self._timeout)
            if isinstance(url_or_client, str)
            else url_or_client
        )
        if not callable(getattr(self.client, "get", None)):
            raise TypeError("url_or_client must be a redis:// URL or a redis.asyncio.Redis client")

    def _client(self) -> Redis:
        """The client, with a fresh connection pool if the event loop changed.

        Pooled connections belong to the loop that opened them; used from
        another loop they fail.  A server runs one loop per process, but test
        clients (Starlette's ``TestClient``, one ``asyncio.run`` per test)
        start a new loop per request or test, so a client this store created
        from a URL is re-created for each new loop.  A client you pass in is
        used as is.
        """
        if self._url is not None:
            loop = asyncio.get_running_loop()
            if loop is not self._loop:
                if self._loop is not None:
                    self.client = _client_from_url(self._url, self._timeout)
                self._loop = loop
        return self.client

    async def load(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._client().get(self.prefix + session_id)
        if raw is None:
            return None
        if isinstance(raw, str):  # a client created with decode_responses=True
            raw = raw.encode("utf-8")
        return decode_record(self.serializer, raw)

    async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
        raw = self.serializer.dumps(data)
        await self._client().set(
            self.prefix + session_id, raw, ex=ttl if ttl is not None else self.default_ttl
        )

    async def delete(self, session_id: str) -> None:
        await self._client().delete(self.prefix + session_id)

    async def touch(self, session_id: str, ttl: int | None) -> None:
        await self._client().expire(
            self.prefix + session_id, ttl if ttl is not None else self.default_ttl
        )

    async def aclose(self) -> None:
        """Close the client if this store created it from a URL."""
        # A client whose connections belong to another (finished) loop has
        # nothing this loop can close; a fresh one is made on next use.
        if self.owns_client and self._loop in (None, asyncio.get_running_loop()):
            await self.client.aclose()

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"


def _is_sync_client(client: object) -> bool:
    """Whether ``client`` is redis-py's blocking client (needs no import when absent)."""
    if isinstance(client, str):
        return False
    try:
        import redis
        from redis.cluster import RedisCluster
    except ImportError:  # pragma: no cover - then it cannot be a redis-py client
        return False
    return isinstance(client, (redis.Redis, RedisCluster))


def _client_from_url(url: str, timeout: float) -> Redis:
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "RedisStore needs the redis package: pip install 'asgi-kit[redis]'"
        ) from exc
    # One immediate retry re-opens a connection Redis closed (restart, idle
    # timeout); more retries with back-off would only hold requests longer.
    # A timed-out command is not retried: each call waits `timeout` at most.
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
