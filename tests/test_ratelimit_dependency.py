"""``Depends(RateLimit(...))``: route- and router-level limits in FastAPI."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import PlainTextResponse

from asgi_kit.ratelimit import MemoryBackend, RateLimitMiddleware, Rule, header
from asgi_kit.ratelimit.check import CheckResult
from asgi_kit.ratelimit.dependency import RateLimit, RateLimitExceeded

from ._support.asgi import asgi_client
from ._support.ratelimit import redis_backend


def build(limit: RateLimit, **middleware: Any) -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/api", dependencies=[Depends(limit)])

    @app.post("/login", dependencies=[Depends(limit)])
    async def login() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/own-response")
    async def own(info: CheckResult = Depends(limit)) -> PlainTextResponse:  # noqa: B008
        # An endpoint returning its own Response adds the headers itself.
        return PlainTextResponse("own", headers={k.decode(): v.decode() for k, v in info.headers})

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/free")
    async def free() -> dict[str, bool]:
        return {"free": True}

    app.include_router(router)
    if middleware:
        app.add_middleware(RateLimitMiddleware, **middleware)
    return app


async def test_route_and_router_limits_with_the_middlewares_429() -> None:
    limit = RateLimit(Rule("2/minute", name="route"))
    async with asgi_client(build(limit)) as client:
        ok = await client.post("/login")
        assert ok.status_code == 200 and ok.json() == {"ok": True}
        assert ok.headers["ratelimit-limit"] == "2"
        assert ok.headers["ratelimit-remaining"] == "1"
        assert ok.headers["ratelimit-policy"] == "2;w=60"
        await client.post("/login")
        denied = await client.post("/login")
        assert (await client.get("/free")).status_code == 200
        # The router's dependency: /api/items/... share the rule (same key).
        assert (await client.get("/api/items/1")).status_code == 429

    # The same response the middleware sends for the same rule and client.
    rules = [Rule("2/minute", name="route")]
    async with asgi_client(build(RateLimit(Rule("1/minute")), rules=rules)) as client:
        for _ in range(3):
            direct = await client.get("/free")
    assert denied.status_code == direct.status_code == 429
    assert denied.content == direct.content
    assert denied.json() == {"detail": "Too Many Requests", "retry_after": 30}
    drop = {"date", "server"}
    assert [(k, v) for k, v in denied.headers.items() if k not in drop] == [
        (k, v) for k, v in direct.headers.items() if k not in drop
    ]


async def test_endpoints_returning_a_response_use_the_result() -> None:
    limit = RateLimit(Rule("5/minute", name="own"), headers="ietf")
    async with asgi_client(build(limit)) as client:
        answer = await client.get("/own-response")
    assert answer.text == "own"
    assert answer.headers["ratelimit"] == '"own";r=4;t=12'


async def test_problem_details_and_route_rules() -> None:
    limit = RateLimit(
        Rule("1/minute", route="/api/items/{item_id}", name="items"),
        headers="ietf",
        problem_details=True,
    )
    async with asgi_client(build(limit)) as client:
        assert (await client.get("/api/items/1")).status_code == 200
        denied = await client.get("/api/items/2")  # another path, the same route
        assert (await client.post("/login")).status_code == 200  # not that route
    assert denied.status_code == 429
    assert denied.headers["content-type"] == "application/problem+json"
    assert json.loads(denied.content)["violated-policies"] == ["items"]


async def test_shares_the_middlewares_backend() -> None:
    backend = MemoryBackend()
    limit = RateLimit(Rule("3/minute", name="route", key=header("x-user")), backend=backend)
    app = build(
        limit, rules=[Rule("3/minute", name="route", key=header("x-user"))], backend=backend
    )
    async with asgi_client(app, headers={"x-user": "u1"}) as client:
        # The middleware's rule and the dependency's are one bucket (same name and key).
        assert (await client.post("/login")).status_code == 200  # 2 of 3: both counted
        assert (await client.get("/free")).status_code == 200  # 3 of 3
        assert (await client.post("/login")).status_code == 429  # the middleware's answer
    assert len(backend) == 1


async def test_backend_failure_follows_on_backend_error(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(MemoryBackend):
        async def hit(self, checks: Any) -> Any:
            raise ConnectionError("down")

    for mode, status in (("allow", 200), ("deny", 503)):
        limit = RateLimit(Rule("1/minute"), backend=Broken(), on_backend_error=mode)
        async with asgi_client(build(limit)) as client:
            assert (await client.post("/login")).status_code == status
    assert "rate limit backend failed" in caplog.text


def test_validation() -> None:
    with pytest.raises(TypeError, match="on_limited"):
        RateLimit(Rule("1/minute"), on_limited=lambda *a: None)
    with pytest.raises(ValueError, match="headers"):
        RateLimit(Rule("1/minute"), headers="bogus")
    with pytest.raises(TypeError, match="is not a Rule"):
        RateLimit("5/minute")  # type: ignore[arg-type]
    assert repr(RateLimit([Rule("1/minute", name="a"), Rule("2/minute", name="b")])).startswith(
        "RateLimit(RateLimitMiddleware(rules=[Rule('1/minute'"
    )
    assert issubclass(RateLimitExceeded, Exception)


@pytest.mark.redis
async def test_on_redis_two_apps_share_one_limit(redis_url: str) -> None:
    async with redis_backend(redis_url, "dep:") as backend:
        apps = [build(RateLimit(Rule("3/minute", name="login"), backend=backend)) for _ in "ab"]
        statuses = []
        for i in range(4):
            transport = httpx.ASGITransport(app=apps[i % 2], client=("10.0.0.9", 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                statuses.append((await client.post("/login")).status_code)
        assert statuses == [200, 200, 200, 429]
