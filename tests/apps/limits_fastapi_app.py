"""A FastAPI app behind RequestLimitsMiddleware (add_middleware), for tests/test_limits_e2e.py.

``/upload`` reads the whole body the way FastAPI users do (``await
request.body()``), so a body cut by the limit reaches it as Starlette's
``ClientDisconnect``; ``/slow`` never answers within the timeout.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request

from asgi_kit import RequestLimitsMiddleware

LIMIT = 256 * 1024

app = FastAPI()
app.add_middleware(RequestLimitsMiddleware, max_body_size=LIMIT, timeout=0.5)
cleanups: list[str] = []


@app.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@app.get("/slow")
async def slow() -> dict[str, bool]:
    try:
        await asyncio.sleep(30)
    finally:
        cleanups.append("slow")
    return {"ok": True}


@app.get("/cleanups")
async def cleaned() -> list[str]:
    return cleanups
