"""A FastAPI app whose middleware answer some requests before the router runs.

Metrics outermost, then CORS (answers preflights), then rate limiting
(answers 429s): what ``app.add_middleware`` users build.  Every client shares
one limit of 3 requests a minute, so a test can run into it quickly.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from asgi_kit import CORSMiddleware, MetricsMiddleware, RateLimitMiddleware, Rule

ORIGIN = "https://app.example"
registry = CollectorRegistry()
app = FastAPI()
users = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.post("/orders")
async def order() -> dict[str, bool]:
    return {"ok": True}


@users.get("/users/{name}")
async def user(name: str) -> dict[str, str]:
    return {"name": name}


app.mount("/v2", users)
app.add_middleware(RateLimitMiddleware, rules=[Rule("3/minute")], key=lambda scope: "everyone")
app.add_middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["GET", "POST"])
app.add_middleware(MetricsMiddleware, registry=registry, metrics_path="/metrics")
