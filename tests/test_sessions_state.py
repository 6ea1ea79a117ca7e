"""Per-request session state: what the app sees when a store fails, and load_session."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_kit import MemoryStore, SessionMiddleware
from asgi_kit.sessions import load_session
from asgi_kit.sessions.state import STATE_KEY, SessionState
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http

SECRET = "example-secret-key"


class FlakyStore(MemoryStore):
    """A memory store whose loads fail while ``down`` is set (a store outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls: list[str] = []

    async def load(self, session_id: str) -> dict[str, Any] | None:
        self.calls.append("load")
        if self.down:
            raise ConnectionError("store unreachable")
        return await super().load(session_id)

    async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
        self.calls.append("save")
        await super().save(session_id, data, ttl)

    async def delete(self, session_id: str) -> None:
        self.calls.append("delete")
        await super().delete(session_id)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    session = scope["session"]
    path = scope["path"]
    if path == "/login":
        session["user"] = "alice"
    elif path == "/count":
        session["n"] = session.get("n", 0) + 1
    elif path == "/logout":
        session.clear()
    body = json.dumps({"session": dict(session), "unavailable": session.unavailable})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


def cookie(response: Any) -> str | None:
    headers = response.header_all("set-cookie")
    return headers[0].split(";", 1)[0] if headers else None


async def test_a_failed_load_is_never_written_back_and_keeps_the_user_logged_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    mw = SessionMiddleware(app, SECRET, store=store)
    login = cookie(await call_http(mw, path="/login"))
    assert login is not None
    store.down = True
    store.calls.clear()
    during = await call_http(mw, path="/count", headers={"cookie": login})
    assert json.loads(during.text) == {"session": {"n": 1}, "unavailable": True}
    assert during.header_all("set-cookie") == []  # the browser keeps its cookie
    assert store.calls == ["load"]  # no save over the real record
    store.down = False
    after = await call_http(mw, path="/count", headers={"cookie": login})
    assert json.loads(after.text) == {"session": {"user": "alice", "n": 1}, "unavailable": False}


async def test_a_clear_during_an_outage_changes_nothing() -> None:
    store = FlakyStore()
    mw = SessionMiddleware(app, SECRET, store=store)
    login = cookie(await call_http(mw, path="/login"))
    assert login is not None
    store.down = True
    store.calls.clear()
    response = await call_http(mw, path="/logout", headers={"cookie": login})
    assert json.loads(response.text)["unavailable"] is True
    assert response.header_all("set-cookie") == []
    assert store.calls == ["load"]  # no delete of a record the app never saw
    store.down = False
    again = await call_http(mw, path="/", headers={"cookie": login})
    assert json.loads(again.text)["session"] == {"user": "alice"}


async def test_state_lives_in_the_scope_not_in_the_session() -> None:
    seen: dict[str, Any] = {}

    async def inspect(scope: Scope, receive: Receive, send: Send) -> None:
        seen["state"] = scope[STATE_KEY]
        seen["slots"] = type(scope["session"]).__slots__
        await load_session(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await call_http(SessionMiddleware(inspect, SECRET, autoload=False))
    assert isinstance(seen["state"], SessionState)
    assert seen["state"].load is None  # loaded, and the loader released
    assert not {"_middleware", "_cookie", "_headers", "_payload"} & set(seen["slots"])
