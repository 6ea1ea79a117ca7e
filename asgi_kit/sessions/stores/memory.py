"""A bounded in-process store with expiry (one worker only)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .base import (
    DEFAULT_TTL,
    Serializer,
    SessionStore,
    check_positive_int,
    check_serializer,
    decode_record,
)

__all__ = ["MemoryStore"]


class MemoryStore(SessionStore):
    """Sessions in this process's memory: for development, tests and single workers.

    Records are kept serialised (so a saved session is a snapshot, exactly as
    with Redis, and values must be serialisable), expire after their TTL, and
    at most ``max_entries`` are kept: when full, the record closest to expiry
    is evicted.  Nothing is shared between worker processes.

    Args:
        max_entries: Upper bound on stored sessions.
        default_ttl: Lifetime in seconds when the middleware's ``max_age`` is None.
        serializer: Turns the session into bytes and back (default: JSON).
        clock: Monotonic time source in seconds (for tests).
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        default_ttl: int = DEFAULT_TTL,
        serializer: Serializer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = check_positive_int(max_entries, "max_entries")
        self.default_ttl = check_positive_int(default_ttl)
        self.serializer = check_serializer(serializer)
        self._clock = clock
        # id -> (expires_at, serialised data), in write order; with one TTL
        # that is also expiry order, so expired records sit at the front.
        self._records: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    async def load(self, session_id: str) -> dict[str, Any] | None:
        record = self._records.get(session_id)
        if record is None:
            return None
        if record[0] <= self._clock():
            del self._records[session_id]
            return None
        return decode_record(self.serializer, record[1])

    async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
        raw = self.serializer.dumps(data)
        self._put(session_id, raw, ttl)

    def _put(self, session_id: str, raw: bytes, ttl: int | None) -> None:
        now = self._clock()
        records = self._records
        records[session_id] = (now + (ttl if ttl is not None else self.default_ttl), raw)
        records.move_to_end(session_id)
        # Drop expired records from the front, then evict down to the bound.
        while records:
            first = next(iter(records.values()))
            if first[0] > now:
                break
            records.popitem(last=False)
        while len(records) > self.max_entries:
            records.popitem(last=False)

    async def delete(self, session_id: str) -> None:
        self._records.pop(session_id, None)

    async def touch(self, session_id: str, ttl: int | None) -> None:
        record = self._records.get(session_id)
        if record is not None and record[0] > self._clock():
            self._put(session_id, record[1], ttl)

    def __repr__(self) -> str:
        return f"MemoryStore(max_entries={self.max_entries})"
