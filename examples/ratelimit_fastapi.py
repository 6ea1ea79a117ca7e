"""Rate limiting a FastAPI app: ``uvicorn examples.ratelimit_fastapi:app``.

Every client gets 100 requests per minute; ``POST /login`` additionally 5 per
minute (sliding window).  Responses carry the IETF ``RateLimit-Policy`` and
``RateLimit`` headers; denied requests get a problem+json 429.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

from asgi_kit import MemoryBackend, RateLimitMiddleware, RedisBackend, Rule

app = FastAPI()


@app.get("/")
async def index() -> dict[str, str]:
    return {"hello": "world"}


@app.post("/login")
async def login() -> dict[str, bool]:
    return {"ok": True}


async def too_many(scope: Any, receive: Any, send: Any) -> None:
    """A problem+json 429 (RFC 9457), as the IETF draft's example answers."""
    decision = scope["ratelimit"]
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Too Many Requests",
            "status": 429,
            "violated-policies": [decision["rule"].name],
            "retry_after": decision["retry_after"],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [(b"content-type", b"application/problem+json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


redis_url = os.environ.get("REDIS_URL")
app.add_middleware(
    RateLimitMiddleware,
    rules=[
        Rule("100/minute", name="default"),
        Rule("5/minute", path="/login", methods={"POST"}, algorithm="sliding_window", name="login"),
    ],
    backend=RedisBackend(redis_url) if redis_url else MemoryBackend(),
    headers="ietf",
    on_limited=too_many,
)
