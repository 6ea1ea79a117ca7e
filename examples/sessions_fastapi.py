"""Log-in / log-out with server-side sessions in FastAPI.

Run: ``uvicorn sessions_fastapi:app`` from this directory (Redis is used when
``REDIS_URL`` is set, process memory otherwise), then::

    curl -c jar -b jar -X POST localhost:8000/login -H 'content-type: application/json' \\
         -d '{"user": "ann"}'
    curl -c jar -b jar localhost:8000/me
    curl -c jar -b jar -X POST localhost:8000/logout
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from asgi_kit import MemoryStore, RedisStore, SessionMiddleware
from asgi_kit.sessions import regenerate_id

app = FastAPI()
redis_url = os.environ.get("REDIS_URL")
app.add_middleware(
    SessionMiddleware,
    secret_key=os.environ.get("SESSION_SECRET", "change-me"),
    store=RedisStore(redis_url) if redis_url else MemoryStore(),
    https_only=os.environ.get("HTTPS_ONLY") == "1",
)


class Login(BaseModel):
    user: str


@app.post("/login")
async def login(body: Login, request: Request) -> dict[str, Any]:
    regenerate_id(request)  # new id at log-in: defeats session fixation
    request.session["user"] = body.user
    return {"user": body.user}


@app.get("/me")
async def me(request: Request) -> dict[str, Any]:
    user = request.session.get("user")
    if user is None:
        raise HTTPException(status_code=401, detail="not logged in")
    return {"user": user}


@app.post("/logout")
async def logout(request: Request) -> dict[str, Any]:
    request.session.clear()  # deletes the record and expires the cookie
    return {"user": None}
