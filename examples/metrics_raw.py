"""A raw ASGI app with metrics: ``route_resolver`` names routes without a framework.

Run: ``uvicorn metrics_raw:app`` (from examples/), then
``curl -s localhost:8000/users/7`` and ``curl -s localhost:8000/metrics``.
"""

from __future__ import annotations

from typing import Any

from asgi_kit import MetricsMiddleware


async def users(scope: dict[str, Any], receive: Any, send: Any) -> None:
    found = scope["path"].startswith("/users/")
    status = 200 if found else 404
    body = b'{"user": true}' if found else b'{"error": "not found"}'
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def resolve_route(scope: dict[str, Any]) -> str | None:
    """The route template for a request, or None for "unmatched"."""
    if scope["path"].startswith("/users/"):
        return "/users/{user_id}"
    return None


app = MetricsMiddleware(users, route_resolver=resolve_route, metrics_path="/metrics")
