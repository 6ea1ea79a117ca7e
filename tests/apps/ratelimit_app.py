"""RateLimitMiddleware on Redis, for multi-process tests.

Environment: ``REDIS_URL`` (required); ``RATELIMIT_CLOCK_SKEW`` shifts this
process's wall clock by that many seconds (simulating another host whose
clock is wrong: the limit must not care, it uses Redis's clock).

Routes: ``/sliding`` (100/minute, sliding window), ``/gcra`` (100/hour,
GCRA), anything else unlimited.  Every response names the worker's pid.
"""

from __future__ import annotations

import os
import time
from typing import Any

from asgi_kit._http import send_response
from asgi_kit.ratelimit import RateLimitMiddleware, RedisBackend, Rule

_skew = float(os.environ.get("RATELIMIT_CLOCK_SKEW", "0"))
if _skew:
    _real_time, _real_time_ns = time.time, time.time_ns
    time.time = lambda: _real_time() + _skew
    time.time_ns = lambda: _real_time_ns() + int(_skew * 1e9)

PID = str(os.getpid()).encode()


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":  # lifespan: returning tells the server it is unsupported
        await send_response(send, 200, b"ok")


limited = RateLimitMiddleware(
    endpoint,
    rules=[
        Rule("100/minute", path="/sliding", algorithm="sliding_window"),
        Rule("100/hour", path="/gcra"),
    ],
    backend=RedisBackend(
        os.environ["REDIS_URL"], timeout=float(os.environ.get("REDIS_TIMEOUT", "10"))
    ),
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    """Tag every response (limited or not) with the worker's pid."""

    async def tagged(message: Any) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"x-worker-pid", PID)]
        await send(message)

    await limited(scope, receive, tagged)
