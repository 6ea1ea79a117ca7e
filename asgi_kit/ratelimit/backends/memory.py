"""``MemoryBackend``: exact, O(1), bounded, for one process."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from asgi_kit.ratelimit.algorithms import State, fixed_window, gcra, sliding_window
from asgi_kit.ratelimit.rule import Rule

from .base import Backend, Outcome

__all__ = ["MemoryBackend"]

_ALGORITHMS = {1: gcra, 2: sliding_window, 3: fixed_window}
# Expired entries removed from the least recently used end per decision.
_SWEEP = 2


class MemoryBackend(Backend):
    """Rate-limit state in this process's memory.

    Exact under asyncio concurrency: a decision runs without yielding to the
    event loop, so concurrent requests cannot interleave inside it.  Each
    decision is O(1): a dict look-up, a little arithmetic and, at most, a
    couple of evictions.  Memory is bounded by ``max_keys`` entries (one per
    rule and client): expired entries are swept from the least recently used
    end as requests arrive, and when the store is full the least recently
    used entry is evicted (that client starts afresh, so size ``max_keys``
    above the number of clients active within your longest period).

    Time comes from ``clock`` (``time.monotonic`` by default), so changes of
    the wall clock do not affect limits.  Each worker process has its own
    state: with several workers or hosts use :class:`RedisBackend`.
    """

    def __init__(
        self, max_keys: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"max_keys must be a positive int, got {max_keys!r}")
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        self.max_keys = max_keys
        self._clock = clock
        self._store: OrderedDict[tuple[str, str], State] = OrderedDict()

    def __len__(self) -> int:
        return len(self._store)

    async def hit(self, checks: Sequence[tuple[Rule, str]]) -> Sequence[Outcome]:
        # No await in here: the whole decision is atomic on the event loop.
        now = self._clock()
        store = self._store
        if len(checks) == 1:
            rule, key = checks[0]
            skey = (rule.ident, key)
            old = store.get(skey)
            outcome, state = _ALGORITHMS[rule.algorithm_id](
                old, now, rule.count, rule.period, rule.cost
            )
            if state is not None:
                if old is not None:
                    store[skey] = state
                    store.move_to_end(skey)
                else:
                    self._insert(skey, state, now)
            return (outcome,)
        outcomes: list[Outcome] = []
        writes: list[tuple[tuple[str, str], State]] = []
        admitted = True
        for rule, key in checks:
            skey = (rule.ident, key)
            outcome, state = _ALGORITHMS[rule.algorithm_id](
                store.get(skey), now, rule.count, rule.period, rule.cost
            )
            outcomes.append(outcome)
            if state is None:
                admitted = False
            elif admitted:
                writes.append((skey, state))
        if admitted:
            for skey, state in writes:
                if skey in store:
                    store[skey] = state
                    store.move_to_end(skey)
                else:
                    self._insert(skey, state, now)
        return outcomes

    def _insert(self, skey: tuple[str, str], state: State, now: float) -> None:
        # Memory only grows here, so this is where expired entries are swept
        # (a few, from the least recently used end: O(1) per decision) and,
        # when the store is still full, the least recently used one evicted.
        store = self._store
        for _ in range(_SWEEP):
            oldest = next(iter(store), None)
            if oldest is None or store[oldest][0] > now:
                break
            del store[oldest]
        if len(store) >= self.max_keys:
            store.popitem(last=False)
        store[skey] = state

    def clear(self) -> None:
        """Forget every client's state."""
        self._store.clear()

    def __repr__(self) -> str:
        return f"MemoryBackend(max_keys={self.max_keys}, keys={len(self._store)})"
