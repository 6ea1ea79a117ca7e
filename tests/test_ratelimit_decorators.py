"""``@rate_limit`` on Django views: sync and async, ASGI and WSGI, the middleware's 429."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from asgi_kit.ratelimit import RateLimitMiddleware, Rule, header
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http
from .apps import ratelimit_decorated_django as views

URLCONF = "tests.apps.ratelimit_decorated_django"


@pytest.fixture(autouse=True)
def django_urls() -> Iterator[None]:
    from django.test import override_settings

    from tests.apps.django_project import configure

    configure()
    views.BACKEND.clear()
    views.RUNS.clear()
    with override_settings(ROOT_URLCONF=URLCONF, MIDDLEWARE=[]):
        yield


def test_sync_view_under_wsgi() -> None:
    from django.test import Client

    client = Client(headers={"x-user": "w1"})
    first = client.get("/sync/")
    assert first.status_code == 200 and first.json() == {"view": "sync"}
    assert first["RateLimit-Limit"] == "2" and first["RateLimit-Remaining"] == "1"
    client.get("/sync/")
    denied = client.get("/sync/")
    assert views.RUNS == {"sync": 2}
    assert denied.status_code == 429
    assert json.loads(denied.content) == {"detail": "Too Many Requests", "retry_after": 30}
    assert denied["Retry-After"] == "30" and denied["Content-Type"] == "application/json"
    # Another client has its own bucket.
    assert Client(headers={"x-user": "w2"}).get("/sync/").status_code == 200


async def test_views_under_asgi_with_the_middlewares_response() -> None:
    from django.core.handlers.asgi import ASGIHandler

    handler = ASGIHandler()
    user = {"x-user": "a1"}
    answers = [await call_http(handler, "GET", "/async/", user) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert views.RUNS == {"async": 2}
    assert answers[0].header("ratelimit") == '"async";r=1;t=30'
    denied = answers[2]
    assert denied.header("content-type") == "application/problem+json"
    assert json.loads(denied.body)["violated-policies"] == ["async"]

    # Byte for byte the middleware's 429 for the same rule.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not reached")

    mw = RateLimitMiddleware(
        app,
        rules=[Rule("2/minute", name="async", key=header("x-user"))],
        backend=views.BACKEND,
        headers="ietf",
        problem_details=True,
    )
    direct = await call_http(mw, "GET", "/async/", user)
    assert direct.status == 429 and direct.body == denied.body
    ours = {(k.lower(), v) for k, v in denied.headers}
    assert {(k.lower(), v) for k, v in direct.headers} <= ours

    # Sync views work under ASGI too (Django runs them in a thread).
    assert [(await call_http(handler, "GET", "/sync/", user)).status for _ in range(3)] == [
        200,
        200,
        429,
    ]


def test_route_rules_see_the_resolved_view() -> None:
    from django.test import Client

    client = Client()
    assert client.get("/items/1/").status_code == 200
    assert client.get("/items/2/").status_code == 429  # same route, another path
