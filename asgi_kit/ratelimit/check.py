"""``RateLimitCheck``: the middleware's decision, for route-level integrations.

The FastAPI dependency and the Django view decorator do not re-implement the
rate limiter: they run a real :class:`RateLimitMiddleware` around a probe
app.  When the middleware admits the request it calls the probe, which sends
an empty response start through the middleware's ``send`` so the rate-limit
headers come back merged; when it denies (or the backend failed with
``on_backend_error="deny"``) the response it sent *is* the answer, byte for
byte the one the middleware gives.  Exemptions, rules, keys, backends,
failure logging, headers and the 429 body are therefore all the middleware's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from asgi_kit.types import Headers, Message, Scope

from .middleware import RateLimitMiddleware
from .rule import Rule

__all__ = ["CheckResult", "RateLimitCheck"]

# Scope key the probe sets when the middleware let the request through.
_ADMITTED = "asgi_kit.ratelimit.admitted"
_START: Message = {"type": "http.response.start", "status": 200, "headers": []}
_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


async def _probe(scope: Scope, receive: Any, send: Any) -> None:
    scope[_ADMITTED] = True
    # A fresh message each time: the middleware copies it, but never share.
    await send({**_START, "headers": []})


async def _receive() -> Message:
    return _REQUEST


class CheckResult(NamedTuple):
    """What the middleware decided for one request.

    ``allowed``: let the view run and add ``headers`` (the rate-limit headers,
    empty when ``headers=False`` or no rule applied) to its response.
    Otherwise answer with ``status``, ``headers`` and ``body``: the
    middleware's 429 (or the 503 of ``on_backend_error="deny"``).
    """

    allowed: bool
    status: int
    headers: Headers
    body: bytes


class RateLimitCheck:
    """Decides requests exactly as ``RateLimitMiddleware(**options)`` would.

    ``rules`` are :class:`Rule` objects or lists of them (none: the
    middleware's default rule); ``options`` are the
    middleware's (``backend``, ``key``, ``headers``, ``on_backend_error``,
    ``exclude_paths``, ``partition_key``, ``problem_details``...), validated
    the same way.  Pass the backend your middleware uses to share its state.
    """

    __slots__ = ("middleware",)

    def __init__(self, *rules: Rule | Iterable[Rule], **options: Any) -> None:
        flat: list[Rule] = []
        item: Any
        for item in rules:
            if isinstance(item, Rule):
                flat.append(item)
            elif isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
                raise TypeError(f"rules: {item!r} is not a Rule (write Rule({item!r}))")
            else:
                flat.extend(item)
        if "on_limited" in options:
            raise TypeError(
                "on_limited: a route-level limit answers with the middleware's 429; "
                "use an exception handler for another answer"
            )
        self.middleware = RateLimitMiddleware(_probe, rules=flat or None, **options)

    async def __call__(self, scope: Scope) -> CheckResult:
        """Decide the request of ``scope`` (an ``http`` scope; it is not modified)."""
        scope = dict(scope)
        scope.pop(_ADMITTED, None)
        messages: list[Message] = []

        async def send(message: Message) -> None:
            messages.append(message)

        await self.middleware(scope, _receive, send)
        start = next((m for m in messages if m["type"] == "http.response.start"), _START)
        headers: Headers = list(start.get("headers") or [])
        if scope.get(_ADMITTED):
            return CheckResult(True, 200, headers, b"")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        return CheckResult(False, int(start["status"]), headers, body)

    def __repr__(self) -> str:
        return f"RateLimitCheck({self.middleware!r})"
