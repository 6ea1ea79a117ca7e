"""Plumbing shared by the Redis rate-limit backend and the Redis session store.

Imports nothing from ``redis`` at module level, so ``import asgi_kit`` works
without the ``redis`` extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["LoopBoundClient", "is_sync_client"]


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


class LoopBoundClient:
    """A ``redis.asyncio`` client, re-created when the running event loop changes.

    Pooled connections belong to the loop that opened them; used from another
    loop they fail.  A server runs one loop per process, but test clients
    (Starlette's ``TestClient``, one ``asyncio.run`` per test) start a new
    loop per request or test, so a client built from a URL (``factory`` given)
    is re-created for each new loop.  A client the user passed in
    (``factory=None``) is used as is.
    """

    __slots__ = ("_factory", "_loop", "client")

    def __init__(self, client: Any, factory: Callable[[], Any] | None) -> None:
        self.client = client
        self._factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None

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

    async def aclose(self) -> None:
        """Close the client when it was built here and belongs to this loop.

        A client whose connections belong to another (finished) loop has
        nothing this loop can close; a fresh one is made on next use.
        """
        if self._factory is not None and self._loop in (None, asyncio.get_running_loop()):
            await self.client.aclose()
