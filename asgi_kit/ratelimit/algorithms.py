"""The three algorithms as pure functions over a small state tuple.

The in-memory backend uses these; the Redis backend runs the same arithmetic
in its Lua script (``backends/redis.py``), so both give the same answers.

Time is in seconds from any monotonic origin.  State tuples start with their
expiry time: once ``now >= state[0]`` the state is equivalent to no state.
Each function returns the :class:`Outcome` and the state to store when the
request is admitted (None when it is denied: a denied request consumes
nothing).
"""

from __future__ import annotations

import math

from .backends.base import Outcome

__all__ = ["EPSILON", "State", "fixed_window", "gcra", "sliding_window"]

#: Tolerance for float rounding (seconds, or units of quota).
EPSILON = 1e-9

State = tuple[float, ...]


def gcra(
    state: State | None, now: float, count: int, period: int, cost: int
) -> tuple[Outcome, State | None]:
    """Generic cell rate algorithm (a virtual-scheduling leaky bucket).

    State is ``(expiry, tat)``: the theoretical arrival time.  One unit is
    emitted every ``period / count`` seconds and up to ``count`` units may be
    used at once, so ``100/minute`` admits a burst of 100 and then one request
    every 0.6 s.
    """
    interval = period / count
    tat = state[1] if state is not None and state[0] > now else now
    if tat < now:
        tat = now
    new_tat = tat + cost * interval
    allow_at = new_tat - period
    if allow_at - now > EPSILON:
        wait = allow_at - now
        remaining = int((period - (tat - now)) / interval + EPSILON)
        return Outcome(False, max(remaining, 0), wait, wait), None
    remaining = int((period - (new_tat - now)) / interval + EPSILON)
    return Outcome(True, max(remaining, 0), new_tat - now, 0.0), (new_tat, new_tat)


def fixed_window(
    state: State | None, now: float, count: int, period: int, cost: int
) -> tuple[Outcome, State | None]:
    """A counter per window; the window starts at the key's first request.

    State is ``(expiry, used)`` where ``expiry`` is the window's end.  Anchoring
    the window per key (rather than to the wall clock) avoids every client's
    quota resetting in the same second.
    """
    if state is not None and state[0] > now:
        end, used = state[0], state[1]
    else:
        end, used = now + period, 0.0
    wait = end - now
    if used + cost > count:
        return Outcome(False, max(int(count - used), 0), wait, wait), None
    used += cost
    return Outcome(True, int(count - used), wait, 0.0), (end, used)


def sliding_window(
    state: State | None, now: float, count: int, period: int, cost: int
) -> tuple[Outcome, State | None]:
    """Sliding window counter: this window's count plus the previous one's, weighted.

    State is ``(expiry, origin, index, current, previous)``.  The estimate
    ``previous * (1 - elapsed / period) + current`` assumes the previous
    window's requests were evenly spread; it never admits more than ``count``
    in any window-aligned period and at most ``count`` per sliding period
    under that assumption, with O(1) state.
    """
    if state is not None and state[0] > now:
        _, origin, index, current, previous = state
        now_index = math.floor((now - origin) / period)
        if now_index != index:
            previous = current if now_index == index + 1 else 0.0
            current = 0.0
    else:
        origin, now_index, current, previous = now, 0, 0.0, 0.0
    elapsed = now - origin - now_index * period
    left = period - elapsed  # time to the end of this window
    estimate = previous * left / period + current
    if estimate + cost > count + EPSILON:
        need = count - cost  # the estimate must fall to this
        if current <= need:
            # previous > 0 here, otherwise the estimate would fit.
            wait = left - (need - current) * period / previous
        else:
            wait = left + period - need * period / current
        wait = max(wait, EPSILON)
        return Outcome(False, max(int(count - estimate + EPSILON), 0), wait, wait), None
    current += cost
    remaining = max(int(count - estimate - cost + EPSILON), 0)
    reset = left + period  # when this window's requests stop counting
    expiry = origin + (now_index + 2) * period
    return Outcome(True, remaining, reset, 0.0), (
        expiry,
        origin,
        float(now_index),
        current,
        previous,
    )
