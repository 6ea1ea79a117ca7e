"""Helpers shared by the rate-limit feature tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_kit.ratelimit import RedisBackend


@asynccontextmanager
async def redis_backend(redis_url: str, prefix: str) -> AsyncIterator[RedisBackend]:
    """A RedisBackend on the test Redis with its own key prefix, closed afterwards."""
    backend = RedisBackend(redis_url, prefix=prefix, timeout=2.0)
    try:
        yield backend
    finally:
        await backend.close()
