"""MemoryBackend: the three algorithms, atomicity, exactness and bounded memory."""

from __future__ import annotations

import asyncio

import pytest

from asgi_kit.ratelimit import MemoryBackend, RateLimitMiddleware, Rule

from ._support.asgi import call_http


class Clock:
    """A controllable monotonic clock."""

    def __init__(self, now: float = 1000.0, step: float = 0.0) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def hit(backend: MemoryBackend, rule: Rule, key: str = "k") -> tuple[bool, int, float, float]:
    (outcome,) = await backend.hit([(rule, key)])
    return tuple(outcome)  # type: ignore[return-value]


async def test_gcra_burst_then_smooth_refill() -> None:
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    rule = Rule("10/minute")  # one unit every 6 s, burst of 10
    results = [await hit(backend, rule) for _ in range(10)]
    assert all(r[0] for r in results)
    assert [r[1] for r in results] == list(range(9, -1, -1))
    assert results[0][2] == pytest.approx(6.0)  # full again 6 s after one request
    assert results[-1][2] == pytest.approx(60.0)
    allowed, remaining, reset, retry = await hit(backend, rule)
    assert (allowed, remaining) == (False, 0)
    assert retry == pytest.approx(6.0) and reset == retry
    clock.advance(5.9)
    assert not (await hit(backend, rule))[0]
    clock.advance(0.1)
    assert (await hit(backend, rule))[:2] == (True, 0)
    # Denied requests consumed nothing: after 60 s the whole burst is back.
    clock.advance(60)
    assert (await hit(backend, rule))[:2] == (True, 9)


async def test_fixed_window_counts_per_window() -> None:
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    rule = Rule("3/minute", algorithm="fixed_window")
    assert [(await hit(backend, rule))[1] for _ in range(3)] == [2, 1, 0]
    clock.advance(20)
    allowed, remaining, reset, retry = await hit(backend, rule)
    assert not allowed and remaining == 0
    assert retry == pytest.approx(40.0) and reset == retry
    clock.advance(40)  # the key's window ends 60 s after its first request
    assert (await hit(backend, rule))[:2] == (True, 2)


async def test_sliding_window_weights_the_previous_window() -> None:
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    rule = Rule("10/minute", algorithm="sliding_window")
    for _ in range(10):
        assert (await hit(backend, rule))[0]
    allowed, _, _, retry = await hit(backend, rule)
    assert not allowed
    # Next window starts at 60 s; the previous 10 count 10 * (1 - elapsed/60),
    # so one more fits once that is <= 9, i.e. 6 s into the next window.
    assert retry == pytest.approx(66.0)
    clock.advance(65.9)
    assert not (await hit(backend, rule))[0]
    clock.advance(0.1)
    assert (await hit(backend, rule))[0]
    clock.advance(24)  # 30 s in: previous weighs 10 * 0.5 = 5, current 1, this one -> 3 left
    allowed, remaining, _, _ = await hit(backend, rule)
    assert allowed and remaining == 3
    clock.advance(200)  # everything expired
    assert (await hit(backend, rule))[:2] == (True, 9)


async def test_cost_consumes_several_units() -> None:
    backend = MemoryBackend(clock=Clock())
    rule = Rule("10/minute", cost=4, algorithm="fixed_window")
    assert (await hit(backend, rule))[:2] == (True, 6)
    assert (await hit(backend, rule))[:2] == (True, 2)
    allowed, remaining, _, _ = await hit(backend, rule)
    assert (allowed, remaining) == (False, 2)


async def test_keys_and_rules_are_independent() -> None:
    backend = MemoryBackend(clock=Clock())
    a, b = Rule("1/minute"), Rule("1/minute", path="/x")
    assert (await hit(backend, a, "alice"))[0]
    assert not (await hit(backend, a, "alice"))[0]
    assert (await hit(backend, a, "bob"))[0]
    assert (await hit(backend, b, "alice"))[0]


async def test_denial_by_one_rule_consumes_no_quota_of_the_others() -> None:
    backend = MemoryBackend(clock=Clock())
    wide, narrow = Rule("5/minute"), Rule("1/minute", path="/x")
    first = await backend.hit([(wide, "k"), (narrow, "k")])
    assert [o.allowed for o in first] == [True, True]
    for _ in range(3):
        denied = await backend.hit([(wide, "k"), (narrow, "k")])
        assert [o.allowed for o in denied] == [True, False]
    # Only the first request counted against the wide rule.
    assert (await hit(backend, wide))[1] == 3


async def test_memory_is_bounded_and_expired_keys_are_swept() -> None:
    clock = Clock()
    backend = MemoryBackend(max_keys=50, clock=clock)
    rule = Rule("1/second")
    for i in range(200):
        await hit(backend, rule, f"client-{i}")
    assert len(backend) == 50  # the oldest were evicted
    # The most recent client is still limited; the first was evicted.
    assert not (await hit(backend, rule, "client-199"))[0]
    assert (await hit(backend, rule, "client-0"))[0]
    clock.advance(10)
    for i in range(30):
        await hit(backend, Rule("1/hour"), f"other-{i}")
    # Each decision sweeps expired entries from the old end.
    assert len(backend) < 50
    backend.clear()
    assert len(backend) == 0


def test_max_keys_validated() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MemoryBackend(max_keys=0)
    with pytest.raises(TypeError, match="clock"):
        MemoryBackend(clock=1.0)  # type: ignore[arg-type]


async def _ok(scope: object, receive: object, send: object) -> None:
    await asyncio.sleep(0)  # let other requests interleave inside the app
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
async def test_500_concurrent_requests_admit_exactly_100(algorithm: str) -> None:
    # A clock that moves 1 µs per decision: realistic, but never a refill.
    backend = MemoryBackend(clock=Clock(step=1e-6))
    app = RateLimitMiddleware(
        _ok,
        rules=[Rule("100/minute", algorithm=algorithm)],
        backend=backend,  # type: ignore[arg-type]
    )
    responses = await asyncio.gather(*(call_http(app) for _ in range(500)))
    statuses = [r.status for r in responses]
    assert statuses.count(200) == 100
    assert statuses.count(429) == 400
    remaining = sorted(
        int(r.header("ratelimit-remaining") or -1) for r in responses if r.status == 200
    )
    assert remaining == list(range(100))


async def test_500_concurrent_with_the_real_monotonic_clock() -> None:
    app = RateLimitMiddleware(_ok, rules=[Rule("100/minute", algorithm="fixed_window")])  # type: ignore[arg-type]
    responses = await asyncio.gather(*(call_http(app) for _ in range(500)))
    assert [r.status for r in responses].count(200) == 100
