"""A visit counter on a raw ASGI app with the signed-cookie session store.

Run: ``uvicorn sessions_raw:app`` from this directory and reload
http://127.0.0.1:8000/ a few times; ``/reset`` clears the session.
"""

from __future__ import annotations

import json
from typing import Any

from asgi_kit import SessionMiddleware


async def counter(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    session = scope["session"]
    if scope["path"] == "/reset":
        session.clear()
    else:
        session["visits"] = session.get("visits", 0) + 1
    body = json.dumps(dict(session)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = SessionMiddleware(counter, secret_key="change-me", max_age=3600)
