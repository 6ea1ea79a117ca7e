"""The IETF draft in full (draft-ietf-httpapi-ratelimit-headers-10): qu, pk, problem details.

Every field is parsed back with a real Structured Fields parser (http-sf).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import http_sf
import pytest

from asgi_kit.ratelimit import RateLimitMiddleware, Rule, header
from asgi_kit.ratelimit.middleware import QUOTA_EXCEEDED
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def parsed(answer: Any, name: str) -> list[tuple[str, dict[str, Any]]]:
    value = answer.header(name)
    assert value is not None, name
    result: list[tuple[str, dict[str, Any]]] = http_sf.parse(value.encode(), tltype="list")
    return result


async def test_quota_unit_is_sent_when_a_request_costs_several_units() -> None:
    mw = RateLimitMiddleware(
        app,
        rules=[
            Rule("100/minute"),
            Rule("10/minute", path="/search", cost=5),
            Rule("1000/hour", path="/search", cost=2, unit="credits", name="credits"),
        ],
        headers="ietf",
    )
    answer = await call_http(mw, "GET", "/search")
    policies = dict(parsed(answer, "ratelimit-policy"))
    assert policies["100/minute"] == {"q": 100, "w": 60}  # requests: the default, not sent
    assert policies["10/minute"] == {"q": 10, "qu": "units", "w": 60}
    assert policies["credits"] == {"q": 1000, "qu": "credits", "w": 3600}
    ((name, state),) = parsed(answer, "ratelimit")
    assert name == "10/minute" and state["r"] == 5  # the most restrictive, in its units
    with pytest.raises(ValueError, match="unit"):
        Rule("1/minute", unit='a"b')


async def test_partition_key_is_a_digest_of_the_key() -> None:
    mw = RateLimitMiddleware(
        app,
        rules=[Rule("5/minute"), Rule("50/hour", key=header("x-api-key"), name="key")],
        headers="ietf",
        partition_key=True,
    )
    answer = await call_http(mw, "GET", "/", {"x-api-key": "secret-key"})
    policies = dict(parsed(answer, "ratelimit-policy"))
    assert policies["5/minute"]["pk"] == hashlib.sha256(b"127.0.0.1").digest()[:12]
    assert policies["key"]["pk"] == hashlib.sha256(b"secret-key").digest()[:12]
    assert b"secret-key" not in json.dumps(answer.header("ratelimit-policy")).encode()
    ((name, state),) = parsed(answer, "ratelimit")
    assert name == "5/minute" and state == {
        "r": 4,
        "t": 12,
        "pk": policies["5/minute"]["pk"],
    }


async def test_partition_key_callable_and_validation() -> None:
    mw = RateLimitMiddleware(
        app, rules=[Rule("5/minute")], headers="ietf", partition_key=lambda key: b"tenant-7"
    )
    answer = await call_http(mw)
    assert parsed(answer, "ratelimit")[0][1]["pk"] == b"tenant-7"
    assert base64.b64encode(b"tenant-7").decode() in (answer.header("ratelimit") or "")
    with pytest.raises(ValueError, match="partition_key needs headers='ietf'"):
        RateLimitMiddleware(app, partition_key=True)
    with pytest.raises(TypeError, match="partition_key"):
        RateLimitMiddleware(app, headers="ietf", partition_key="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="problem_details"):
        RateLimitMiddleware(app, problem_details=1)  # type: ignore[arg-type]


async def test_problem_details_429() -> None:
    mw = RateLimitMiddleware(
        app,
        rules=[Rule("1/minute", name="burst"), Rule("2/hour", name="hourly"), Rule("9/day")],
        headers="ietf",
        problem_details=True,
    )
    assert (await call_http(mw)).status == 200
    denied = await call_http(mw)
    assert denied.status == 429
    assert denied.header("content-type") == "application/problem+json"
    problem = json.loads(denied.body)
    assert problem == {
        "type": QUOTA_EXCEEDED,
        "title": "Too Many Requests",
        "status": 429,
        "detail": f"Quota exceeded; retry after {problem['retry_after']} seconds.",
        "violated-policies": ["burst"],
        "retry_after": int(denied.header("retry-after") or 0),
    }
    assert int(denied.header("content-length") or 0) == len(denied.body)
    ((name, state),) = parsed(denied, "ratelimit")
    assert name == "burst" and state["r"] == 0 and state["t"] == problem["retry_after"]


async def test_problem_details_name_every_violated_policy() -> None:
    mw = RateLimitMiddleware(
        app,
        rules=[Rule("1/minute", name="a"), Rule("1/hour", name="b"), Rule("5/day", name="c")],
        problem_details=True,
    )
    await call_http(mw)
    problem = json.loads((await call_http(mw)).body)
    assert problem["violated-policies"] == ["a", "b"]
