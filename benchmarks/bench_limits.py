"""RequestLimitsMiddleware with every limit set and none triggered.

The issue's budget is an absolute one: at most 3 µs per request over the bare
app.  Anchors: Starlette 1.x's ``RequestBodyLimitMiddleware`` (body size
only) and the timeout users write by hand around the app, ``asyncio.wait_for``
(a task per request).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from asgi_kit import RequestLimitsMiddleware

from .driver import App, Scenario, json_app, make_scope, optional

OPTIONS: dict[str, Any] = {
    "max_body_size": 1024 * 1024,
    "timeout": 30,
    "max_concurrency": 100,
    "max_queue": 100,
    "queue_timeout": 5,
}
BODY = b'{"name":"widget","qty":3}'


def _starlette(app: App) -> App:
    from starlette.middleware.body_limit import (  # type: ignore[import-not-found,unused-ignore]
        RequestBodyLimitMiddleware,
    )

    return RequestBodyLimitMiddleware(app, max_body_size=OPTIONS["max_body_size"])


def _wait_for(app: App) -> App:
    async def timeout_middleware(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.wait_for(app(scope, receive, send), OPTIONS["timeout"])

    return timeout_middleware


def scenarios() -> list[Scenario]:
    bare = json_app()
    ours = RequestLimitsMiddleware(bare, **OPTIONS, registry=CollectorRegistry())
    anchors = {
        "starlette RequestBodyLimitMiddleware (body only)": optional(lambda: _starlette(bare)),
        "asyncio.wait_for (timeout only)": _wait_for(bare),
    }
    sized = (b"content-length", b"%d" % len(BODY))
    return [
        Scenario("limits: GET, all limits set", bare=bare, ours=ours, anchors=anchors),
        Scenario(
            "limits: POST with Content-Length",
            bare=bare,
            ours=ours,
            anchors=anchors,
            scope=make_scope("POST", extra_headers=[sized]),
            body=BODY,
        ),
        Scenario(
            "limits: chunked POST (body counted)",
            bare=bare,
            ours=ours,
            anchors=anchors,
            scope=make_scope("POST", extra_headers=[(b"transfer-encoding", b"chunked")]),
            body=BODY,
        ),
    ]


def report() -> str:
    return "Budget: asgi_kit ≤ 3 µs per request over the bare app in every scenario above."
