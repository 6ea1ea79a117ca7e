"""SessionMiddleware against Starlette's (signed cookie) and starsessions (memory store)."""

from __future__ import annotations

import asyncio
from typing import Any

from asgi_kit import MemoryStore, SessionMiddleware

from .driver import App, Scenario, json_app, make_scope, optional

SECRET = "benchmark-secret-key"
DATA = {"user": "ann", "roles": ["admin", "editor"], "csrf": "3f1c0a9e5b7d4e2f"}


def _reading(bare: App) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"].get("user")
        await bare(scope, receive, send)

    return app


def _writing(bare: App) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["user"] = "ann"
        await bare(scope, receive, send)

    return app


def _login(data: dict[str, Any]) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"].update(data)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def _cookie_from(middleware: App) -> str:
    """Run one writing request through ``middleware`` and return its cookie value."""
    headers: list[tuple[bytes, bytes]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])

    await middleware(make_scope(), receive, send)
    for name, value in headers:
        if name.lower() == b"set-cookie":
            return value.decode().split(";", 1)[0].split("=", 1)[1]
    raise RuntimeError("no cookie was set")


def _starlette(app: App, cookie: str = "st") -> App:
    from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

    return StarletteSessions(app, SECRET, session_cookie=cookie)


def _starsessions(app: App, store: Any) -> App:
    from starsessions import SessionAutoloadMiddleware
    from starsessions import SessionMiddleware as StarSessions

    return StarSessions(
        SessionAutoloadMiddleware(app), store=store, cookie_name="ss", cookie_https_only=False
    )


def _starsessions_store() -> Any:
    from starsessions import InMemoryStore

    store = InMemoryStore()
    store.data["bench-session-id"] = b'{"user":"ann","roles":["admin","editor"],"csrf":"x"}'
    return store


async def _cookies() -> dict[str, str]:
    cookies = {
        "ours": await _cookie_from(SessionMiddleware(_login(DATA), SECRET)),
        "encrypted": await _cookie_from(
            SessionMiddleware(_login(DATA), SECRET, session_cookie="enc", encrypt=True)
        ),
    }
    try:
        cookies["starlette"] = await _cookie_from(_starlette(_login(DATA)))
    except ImportError:
        pass
    memory = MemoryStore()
    cookies["memory"] = await _cookie_from(SessionMiddleware(_login(DATA), SECRET, store=memory))
    cookies["_memory_store"] = memory  # type: ignore[assignment]
    return cookies


def scenarios() -> list[Scenario]:
    bare = json_app()
    cookies = asyncio.run(_cookies())
    memory: MemoryStore = cookies.pop("_memory_store")  # type: ignore[assignment]
    cookie_header = "; ".join(
        [
            f"session={cookies['ours']}",
            f"st={cookies.get('starlette', '')}",
            f"mem={cookies['memory']}",
            f"enc={cookies['encrypted']}",
            "ss=bench-session-id",
        ]
    ).encode()
    with_cookie = make_scope(extra_headers=[(b"cookie", cookie_header)])
    no_cookie = make_scope()
    reading, writing = _reading(bare), _writing(bare)

    def vs_starlette(name: str, app: App, scope: Any, goal: float | None, **kw: Any) -> Scenario:
        return Scenario(
            f"cookie store: {name}",
            bare=bare,
            ours=SessionMiddleware(app, SECRET, **kw),
            anchors={"starlette SessionMiddleware": optional(lambda: _starlette(app))},
            scope=scope,
            goal=goal,
        )

    def vs_starsessions(name: str, app: App, scope: Any, **kw: Any) -> Scenario:
        return Scenario(
            f"memory store: {name}",
            bare=bare,
            ours=SessionMiddleware(app, SECRET, **kw),
            anchors={
                "starsessions InMemoryStore": optional(
                    lambda: _starsessions(app, _starsessions_store())
                )
            },
            scope=scope,
        )

    def encrypted(name: str, app: App, scope: Any) -> Scenario:
        # starsessions 2.2.1 (the release on PyPI) ships no encryptor, so the
        # encrypted cookie is measured against the signed one and Starlette's.
        return Scenario(
            f"cookie store, encrypt=True: {name}",
            bare=bare,
            ours=SessionMiddleware(app, SECRET, session_cookie="enc", encrypt=True),
            anchors={
                "asgi_kit signed cookie": SessionMiddleware(app, SECRET),
                "starlette SessionMiddleware": optional(lambda: _starlette(app)),
            },
            scope=scope,
        )

    return [
        vs_starlette("read, valid cookie", reading, with_cookie, 0.7),
        encrypted("read, valid cookie", reading, with_cookie),
        encrypted("write, no cookie", writing, no_cookie),
        vs_starlette("write, no cookie", writing, no_cookie, 0.7),
        vs_starlette(
            "untouched, valid cookie, autoload=False", bare, with_cookie, None, autoload=False
        ),
        vs_starsessions(
            "read, valid cookie", reading, with_cookie, session_cookie="mem", store=memory
        ),
        vs_starsessions("write, no cookie", writing, no_cookie, store=MemoryStore()),
    ]
