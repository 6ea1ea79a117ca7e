"""Rate limiting a raw ASGI app: ``python examples/ratelimit_raw.py``.

Try ``for i in $(seq 12); do curl -si localhost:8000/ | head -1; done``: the
first ten requests pass, then 429 with Retry-After.  Set ``REDIS_URL`` to
share the limit between processes.
"""

from __future__ import annotations

import os
from typing import Any

from asgi_kit.ratelimit import MemoryBackend, RateLimitMiddleware, RedisBackend, Rule, header


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello\n"})


redis_url = os.environ.get("REDIS_URL")
app = RateLimitMiddleware(
    hello,
    rules=[
        Rule("10/minute"),  # per client address
        Rule("100/hour", key=header("X-API-Key"), name="api-key"),  # per API key, when sent
    ],
    backend=RedisBackend(redis_url) if redis_url else MemoryBackend(),
    exempt_paths=["/health"],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
