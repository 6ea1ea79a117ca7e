"""Rate limiting: per-request decision overhead, memory storage, limit never hit.

slowapi needs a Starlette application (its middleware reads
``scope["app"].state.limiter`` and re-matches routes), so it is compared on a
Starlette stack: the bare app is a one-route Starlette app and each candidate
is that app with the middleware added by ``add_middleware``.  asgi-ratelimit
is pure ASGI and is compared over the raw JSON app.  Every candidate allows
1,000,000 requests per minute per client, so no request is ever denied.
"""

from __future__ import annotations

from typing import Any

from asgi_kit.ratelimit import MemoryBackend, RateLimitMiddleware, Rule

from .driver import App, Scenario, json_app, optional

LIMIT = "1000000/minute"


def _starlette(middleware: Any = None, **options: Any) -> App:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def home(request: Any) -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    app = Starlette(routes=[Route("/", home)])
    if middleware is not None:
        app.add_middleware(middleware, **options)
    return app


def _slowapi(headers: bool) -> App:
    from slowapi import Limiter
    from slowapi.middleware import SlowAPIASGIMiddleware
    from slowapi.util import get_remote_address

    app = _starlette(SlowAPIASGIMiddleware)
    app.state.limiter = Limiter(  # type: ignore[attr-defined]
        key_func=get_remote_address, default_limits=[LIMIT], headers_enabled=headers
    )
    return app


def _asgi_ratelimit(app: App) -> App:
    from ratelimit import RateLimitMiddleware as ARMiddleware
    from ratelimit import Rule as ARRule
    from ratelimit.backends.simple import MemoryBackend as ARMemory

    async def authenticate(scope: Any) -> tuple[str, str]:
        return scope["client"][0], "default"

    return ARMiddleware(app, authenticate, ARMemory(), {r"^/": [ARRule(minute=1_000_000)]})


def _ours(app: App, headers: Any) -> App:
    return RateLimitMiddleware(app, rules=[Rule(LIMIT)], backend=MemoryBackend(), headers=headers)


def _ours_scoped(app: App) -> App:
    # Path-scoped rules and an exemption: the request path is normalised once
    # (repeated slashes, dot segments, trailing slash) and matched by both.
    return RateLimitMiddleware(
        app,
        rules=[Rule(LIMIT, path="/*"), Rule(LIMIT, path="/login", methods={"POST"})],
        backend=MemoryBackend(),
        exempt_paths=["/health"],
    )


def scenarios() -> list[Scenario]:
    raw = json_app()
    return [
        Scenario(
            "rate limit, Starlette app, headers on",
            bare=optional(lambda: _starlette()),  # type: ignore[arg-type]
            ours=optional(  # type: ignore[arg-type]
                lambda: _starlette(
                    RateLimitMiddleware, rules=[Rule(LIMIT)], backend=MemoryBackend()
                )
            ),
            anchors={"slowapi ASGI middleware, headers on": optional(lambda: _slowapi(True))},
            goal=0.5,
        ),
        Scenario(
            "rate limit, Starlette app, headers off",
            bare=optional(lambda: _starlette()),  # type: ignore[arg-type]
            ours=optional(  # type: ignore[arg-type]
                lambda: _starlette(
                    RateLimitMiddleware, rules=[Rule(LIMIT)], backend=MemoryBackend(), headers=False
                )
            ),
            anchors={"slowapi ASGI middleware, headers off": optional(lambda: _slowapi(False))},
            goal=0.5,
        ),
        Scenario(
            "rate limit, raw app, headers on",
            bare=raw,
            ours=_ours(raw, "legacy"),
            anchors={
                "asgi-ratelimit (memory, sends no headers)": optional(lambda: _asgi_ratelimit(raw))
            },
            goal=0.5,
        ),
        Scenario(
            "rate limit, raw app, headers off",
            bare=raw,
            ours=_ours(raw, False),
            anchors={"asgi-ratelimit (memory)": optional(lambda: _asgi_ratelimit(raw))},
            goal=0.5,
        ),
        Scenario(
            "rate limit, raw app, path-scoped rules + exempt path",
            bare=raw,
            ours=_ours_scoped(raw),
            anchors={"asgi-ratelimit (memory, path regex)": optional(lambda: _asgi_ratelimit(raw))},
            goal=0.5,
        ),
    ]
