"""``Rule(limit=callable)``: limits per user or plan, sync or async, memory and Redis."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_kit.ratelimit import RateLimitMiddleware, Rule, header
from asgi_kit.ratelimit.middleware import _MAX_VARIANTS
from asgi_kit.ratelimit.rule import _parse_cached
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http
from ._support.ratelimit import redis_backend

PLANS = {"free": "2/minute", "pro": "4/minute"}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def plan_limit(scope: Scope) -> str | None:
    """The limit of the user's plan (from a header here; from the session in an app)."""
    for name, value in scope["headers"]:
        if name == b"x-plan":
            plan = value.decode()
            return None if plan == "internal" else PLANS[plan]
    return PLANS["free"]


async def async_plan_limit(scope: Scope) -> str | None:
    return plan_limit(scope)


async def statuses(mw: Any, plan: str, user: str, n: int) -> list[int]:
    headers = {"x-plan": plan, "x-user": user}
    return [(await call_http(mw, "GET", "/", headers)).status for _ in range(n)]


@pytest.mark.parametrize("limit", [plan_limit, async_plan_limit])
async def test_each_plan_gets_its_limit(limit: Any) -> None:
    mw = RateLimitMiddleware(app, rules=[Rule(limit, key=header("x-user"))])
    assert await statuses(mw, "free", "ann", 3) == [200, 200, 429]
    assert await statuses(mw, "pro", "bob", 5) == [200, 200, 200, 200, 429]
    # None: no limit for this request.
    assert await statuses(mw, "internal", "ops", 10) == [200] * 10


async def test_headers_describe_the_limit_that_applied() -> None:
    mw = RateLimitMiddleware(app, rules=[Rule(plan_limit)], headers="ietf")
    answer = await call_http(mw, "GET", "/", {"x-plan": "pro"})
    assert answer.header("ratelimit-policy") == '"4/minute";q=4;w=60'
    assert answer.header("ratelimit") == '"4/minute";r=3;t=15'
    legacy = RateLimitMiddleware(app, rules=[Rule(plan_limit, name="plan")])
    answer = await call_http(legacy, "GET", "/", {"x-plan": "free"})
    assert answer.header("ratelimit-limit") == "2"
    assert answer.header("ratelimit-policy") == "2;w=60"


async def test_a_user_changing_plan_starts_a_new_bucket() -> None:
    tiers = {"u": "free"}

    def tier(scope: Scope) -> str:
        return PLANS[tiers["u"]]

    mw = RateLimitMiddleware(app, rules=[Rule(tier, key=lambda s: "u")])
    assert [(await call_http(mw)).status for _ in range(3)] == [200, 200, 429]
    tiers["u"] = "pro"
    assert [(await call_http(mw)).status for _ in range(5)] == [200] * 4 + [429]


async def test_callable_limits_combine_with_static_rules() -> None:
    mw = RateLimitMiddleware(
        app, rules=[Rule("3/minute"), Rule(plan_limit, path="/api/*", key=header("x-user"))]
    )
    for _ in range(2):
        assert (await call_http(mw, "GET", "/api/x", {"x-user": "a"})).status == 200
    assert (await call_http(mw, "GET", "/api/x", {"x-user": "a"})).status == 429  # the plan's 2
    assert (await call_http(mw, "GET", "/other")).status == 200  # the global 3: 3rd hit
    assert (await call_http(mw, "GET", "/other")).status == 429


async def test_bad_limit_results_name_the_rule() -> None:
    def bad(scope: Scope) -> Any:
        return scope["state"]["limit"]

    mw = RateLimitMiddleware(app, rules=[Rule(bad, name="bad", cost=3)])
    for value, error in (("lots", ValueError), (5, TypeError), ("2/minute", ValueError)):
        with pytest.raises(error, match="limit function of Rule"):
            await call_http(mw, state={"limit": value})


def test_rule_validation_for_callable_limits() -> None:
    rule = Rule(plan_limit, path="/api/*")
    assert rule.dynamic and rule.name == "dynamic"
    assert "plan_limit" in repr(rule)
    assert Rule(plan_limit).ident != Rule(async_plan_limit).ident
    assert rule.with_limit("5/minute").ident == rule.ident + ":5/60"
    assert rule.with_limit("5/minute").name == "5/minute"
    with pytest.raises(TypeError, match="limit"):
        Rule(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost"):
        Rule(plan_limit, cost=0)


async def test_parsed_limits_and_variants_are_bounded() -> None:
    def many(scope: Scope) -> str:
        return f"{scope['state']['n']}/hour"

    mw = RateLimitMiddleware(app, rules=[Rule(many)])
    for n in range(1, _MAX_VARIANTS + 50):
        await call_http(mw, state={"n": n})
    variants = mw._plans[0].variants
    assert variants is not None and len(variants) == _MAX_VARIANTS
    info = _parse_cached.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize


@pytest.mark.redis
async def test_callable_limits_on_redis(redis_url: str) -> None:
    async with redis_backend(redis_url, "dyn:") as backend:
        rules = [Rule(async_plan_limit, key=header("x-user"), algorithm="sliding_window")]
        one = RateLimitMiddleware(app, rules=rules, backend=backend)
        two = RateLimitMiddleware(app, rules=rules, backend=backend)  # another worker
        assert await statuses(one, "free", "r1", 1) + await statuses(two, "free", "r1", 2) == [
            200,
            200,
            429,
        ]
        assert await statuses(two, "pro", "r2", 5) == [200, 200, 200, 200, 429]
