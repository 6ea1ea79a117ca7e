"""The one bounded-cache policy for per-value decisions.

Middleware remember decisions keyed by client input (an ``Origin``, an
``Accept-Encoding`` value, a header name): real traffic repeats a handful of
values, a hostile client sends a new one every request.  Every such cache in
asgi_kit is a :class:`BoundedCache`: a plain dict (look-ups are the C
``dict.get``) holding at most ``maxsize`` entries, evicting the oldest entry
when full, and refusing keys longer than ``max_key_length`` so made-up huge
values cannot pin memory.  A flood of distinct values costs speed, never
memory.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K", bound=Sized)
V = TypeVar("V")


class BoundedCache(dict[K, V]):
    """A dict of at most ``maxsize`` decisions; read it with ``.get``, fill it with :meth:`put`.

    Eviction is first-in first-out (one entry per insert when full): no
    bookkeeping on hits, and the values that matter come back first anyway.
    """

    __slots__ = ("max_key_length", "maxsize")

    def __init__(self, maxsize: int, max_key_length: int | None = None) -> None:
        super().__init__()
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive int, got {maxsize!r}")
        self.maxsize = maxsize
        self.max_key_length = max_key_length

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` for ``key`` (unless the key is too long); return ``value``."""
        if self.max_key_length is not None and len(key) > self.max_key_length:
            return value
        if len(self) >= self.maxsize and key not in self:
            # dict keeps insertion order: the first key is the oldest.
            del self[next(iter(self))]
        self[key] = value
        return value

    def __repr__(self) -> str:
        return f"BoundedCache({len(self)}/{self.maxsize})"
