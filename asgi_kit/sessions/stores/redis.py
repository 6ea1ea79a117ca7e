"""Sessions in Redis (``redis.asyncio``), shared by every worker and host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgi_kit._redis import LoopBoundClient, is_sync_client

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
        if is_sync_client(url_or_client):
            raise TypeError(
                "url_or_client is a synchronous redis client, which would block the event "
                "loop: pass a redis.asyncio.Redis client or a redis:// URL"
            )
        timeout = float(timeout)
        if isinstance(url_or_client, str):
            url = url_or_client
            self._redis = LoopBoundClient(
                _client_from_url(url, timeout), lambda: _client_from_url(url, timeout)
            )
        else:
            self._redis = LoopBoundClient(url_or_client, None)
        if not callable(getattr(self._redis.client, "get", None)):
            raise TypeError("url_or_client must be a redis:// URL or a redis.asyncio.Redis client")

    @property
    def client(self) -> Redis:
        """The ``redis.asyncio`` client in use (re-created per event loop when built from a URL)."""
        return self._redis.client  # type: ignore[no-any-return]

    @property
    def owns_client(self) -> bool:
        """Whether this store created the client from a URL (and closes it)."""
        return self._redis.owned

    async def load(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get().get(self.prefix + session_id)
        if raw is None:
            return None
        if isinstance(raw, str):  # a client created with decode_responses=True
            raw = raw.encode("utf-8")
        return decode_record(self.serializer, raw)

    async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
        raw = self.serializer.dumps(data)
        await self._redis.get().set(
            self.prefix + session_id, raw, ex=ttl if ttl is not None else self.default_ttl
        )

    async def delete(self, session_id: str) -> None:
        await self._redis.get().delete(self.prefix + session_id)

    async def touch(self, session_id: str, ttl: int | None) -> None:
        await self._redis.get().expire(
            self.prefix + session_id, ttl if ttl is not None else self.default_ttl
        )

    async def aclose(self) -> None:
        """Close the client if this store created it from a URL."""
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"


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
