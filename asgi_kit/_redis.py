"""Plumbing shared by the Redis rate-limit backend and the Redis session store.

Imports nothing from ``redis`` at module level, so ``import asgi_kit`` works
without the ``redis`` extra.

Three jobs:

* :func:`client_from_url` turns every URL scheme users deploy with
  (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``,
  ``redis+sentinel://``) into a ``redis.asyncio`` client.
* :class:`LoopBoundClient` re-creates a client built from a URL when the
  running event loop changes, and holds the per-loop *connection gate*.
* The gate (:meth:`LoopBoundClient.gate`) is an ``asyncio.Semaphore`` of the
  pool size: a burst of N concurrent commands waits for one of the pool's
  connections instead of failing.  redis-py's asyncio pools raise
  ``MaxConnectionsError`` once ``max_connections`` are busy, and its Cluster
  and Sentinel clients have no blocking pool, so one gate in front of every
  kind of client gives all of them the blocking behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "LoopBoundClient",
    "bind_client",
    "check_max_connections",
    "check_timeout",
    "client_from_url",
    "is_sync_client",
    "pool_limit",
]

#: Connections per client (per node for a cluster): what a busy worker needs
#: without opening hundreds of sockets on the server (redis-py's own blocking
#: pool uses the same default).
DEFAULT_MAX_CONNECTIONS = 50


def is_sync_client(client: object) -> bool:
    """Whether ``client`` is redis-py's blocking client, which would stall the loop."""
    if isinstance(client, str):
        return False
    try:
        import redis
        from redis.cluster import RedisCluster
    except ImportError:  # pragma: no cover - then it cannot be a redis-py client
        return False
    return isinstance(client, (redis.Redis, RedisCluster))


def check_timeout(timeout: object) -> float:
    """Validate a ``timeout`` option (positive seconds)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def check_max_connections(value: object) -> int:
    """Validate a ``max_connections`` option (a positive int)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_connections must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"max_connections must be at least 1, got {value!r}")
    return value


def pool_limit(client: Any, wanted: int) -> int:
    """The gate size for a user's client: ``wanted``, or less when its pool is smaller."""
    pool = getattr(client, "connection_pool", None)
    cap = getattr(pool, "max_connections", None)
    if cap is None:  # RedisCluster: max_connections per node, among its node kwargs
        kwargs = getattr(client, "connection_kwargs", None)
        cap = kwargs.get("max_connections") if isinstance(kwargs, dict) else None
    if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
        return min(wanted, cap)
    return wanted


def bind_client(url_or_client: object, timeout: float, max_connections: int) -> LoopBoundClient:
    """The loop-bound holder of a URL's client (built here) or of a user's client.

    Raises ``TypeError`` for redis-py's blocking client, whose calls would
    stall the event loop; the caller checks the client has the methods it needs.
    """
    if isinstance(url_or_client, str):
        url = url_or_client
        return LoopBoundClient(
            client_from_url(url, timeout, max_connections),
            lambda: client_from_url(url, timeout, max_connections),
            max_connections,
        )
    if is_sync_client(url_or_client):
        raise TypeError(
            "url_or_client is a synchronous redis client, which would block the event "
            "loop: pass a redis.asyncio client (Redis, RedisCluster, a Sentinel "
            "master_for() client) or a Redis URL"
        )
    return LoopBoundClient(url_or_client, None, pool_limit(url_or_client, max_connections))


def client_from_url(url: str, timeout: float, max_connections: int) -> Any:
    """A ``redis.asyncio`` client for ``url``, with ``timeout`` on every socket.

    ``redis://``, ``rediss://`` and ``unix://`` give a ``Redis`` client;
    ``redis+cluster://host:port[,host:port…]`` (``rediss+cluster://`` for TLS)
    a ``RedisCluster`` seeded with those nodes;
    ``redis+sentinel://[user:password@]host:port[,host:port…]/service[/db]``
    (``rediss+sentinel://``) the ``master_for(service)`` client of a
    ``Sentinel`` asking those sentinels.  Query parameters of the URL are
    passed on for the plain schemes (redis-py's ``from_url``).
    """
    try:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Redis support needs the redis package: pip install 'asgi-kit[redis]'"
        ) from exc

    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ValueError(f"not a Redis URL (no scheme): {url!r}")
    scheme = scheme.lower()
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
    }
    if scheme in ("redis", "rediss", "unix"):
        # One immediate retry re-opens a connection Redis closed (restart,
        # idle timeout, failover); back-off would only hold requests longer.
        return aioredis.Redis.from_url(
            url,
            max_connections=max_connections,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            **common,
        )
    if scheme in ("redis+cluster", "rediss+cluster"):
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        parts = urlsplit(url)
        nodes = [ClusterNode(host, port) for host, port in _hosts(parts.netloc, url)]
        return RedisCluster(
            startup_nodes=nodes,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=scheme.startswith("rediss"),
            max_connections=max_connections,
            **common,
        )
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        from redis.asyncio.sentinel import Sentinel

        parts = urlsplit(url)
        path = [p for p in parts.path.split("/") if p]
        if not path or len(path) > 2:
            raise ValueError(
                f"a redis+sentinel:// URL names the service: "
                f"redis+sentinel://host:port[,host:port]/service_name[/db], got {url!r}"
            )
        db = 0
        if len(path) == 2:
            if not path[1].isdigit():
                raise ValueError(f"database number must be an int in {url!r}")
            db = int(path[1])
        auth: dict[str, Any] = {}
        if parts.username:
            auth["username"] = unquote(parts.username)
        if parts.password:
            auth["password"] = unquote(parts.password)
        sentinel = Sentinel(
            _hosts(parts.netloc, url),
            sentinel_kwargs=dict(common),
            ssl=scheme.startswith("rediss"),
            **common,
        )
        return sentinel.master_for(
            unquote(path[0]),
            db=db,
            max_connections=max_connections,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            **auth,
        )
    raise ValueError(
        f"unsupported Redis URL scheme {scheme!r} in {url!r}: use redis://, rediss://, "
        "unix://, redis+cluster:// or redis+sentinel://"
    )


def _hosts(netloc: str, url: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` after any ``user:password@``."""
    hosts = netloc.rpartition("@")[2]
    out: list[tuple[str, int]] = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = item.rpartition(":")
            if not host:
                host, port_text = item, ""
        if port_text and not port_text.isdigit():
            raise ValueError(f"bad port {port_text!r} in {url!r}")
        default = 26379 if "sentinel" in url.partition("://")[0] else 6379
        out.append((host, int(port_text) if port_text else default))
    if not out:
        raise ValueError(f"no host in {url!r}")
    return out


class LoopBoundClient:
    """A ``redis.asyncio`` client, re-created when the running event loop changes.

    Pooled connections belong to the loop that opened them; used from another
    loop they fail.  A server runs one loop per process, but test clients
    (Starlette's ``TestClient``, one ``asyncio.run`` per test) start a new
    loop per request or test, so a client built from a URL (``factory`` given)
    is re-created for each new loop.  A client the user passed in
    (``factory=None``) is used as is.  The connection gate (``size`` commands
    in flight at most) is per loop too: asyncio primitives bind to one loop.
    """

    __slots__ = ("_factory", "_gate", "_gate_loop", "_loop", "client", "size")

    def __init__(self, client: Any, factory: Callable[[], Any] | None, size: int) -> None:
        self.client = client
        self._factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self.size = size
        self._gate: asyncio.Semaphore | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None

    @property
    def owned(self) -> bool:
        """Whether the client was built here (from a URL) rather than passed in."""
        return self._factory is not None

    def get(self) -> Any:
        """The client to use on the running loop."""
        if self._factory is not None:
            loop = asyncio.get_running_loop()
            if loop is not self._loop:
                if self._loop is not None:
                    self.client = self._factory()
                self._loop = loop
        return self.client

    def gate(self) -> asyncio.Semaphore:
        """The semaphore to hold while a command uses a pooled connection."""
        loop = asyncio.get_running_loop()
        if self._gate is None or loop is not self._gate_loop:
            self._gate = asyncio.Semaphore(self.size)
            self._gate_loop = loop
        return self._gate

    async def aclose(self) -> None:
        """Close the client when it was built here and belongs to this loop.

        A client whose connections belong to another (finished) loop has
        nothing this loop can close; a fresh one is made on next use.
        """
        if self._factory is not None and self._loop in (None, asyncio.get_running_loop()):
            await self.client.aclose()
            # A redis+sentinel:// client also holds connections to the sentinels.
            manager = getattr(
                getattr(self.client, "connection_pool", None), "sentinel_manager", None
            )
            for sentinel in getattr(manager, "sentinels", ()):
                await sentinel.aclose()
