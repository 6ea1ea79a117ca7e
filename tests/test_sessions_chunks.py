"""Cookie sessions over 4 KB: split across numbered cookies, joined and verified as one."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit import SessionMiddleware
from asgi_kit.sessions import SessionTooLarge
from asgi_kit.sessions.chunks import MAX_COOKIE_SIZE, join_chunks, split_value
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http

SECRET = "example-secret-key"


class Browser:
    """Keeps cookies the way a browser does: set, replace, and expire by Max-Age=0."""

    def __init__(self) -> None:
        self.jar: dict[str, str] = {}

    def take(self, response: Any) -> None:
        for header in response.header_all("set-cookie"):
            pair, _, attributes = header.partition(";")
            name, _, value = pair.partition("=")
            assert len(name) + len(value) <= MAX_COOKIE_SIZE
            if "Max-Age=0" in attributes:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value

    def headers(self) -> dict[str, str]:
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())} if self.jar else {}


def app_that(action: Any) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        action(scope["session"])
        body = json.dumps(dict(scope["session"])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def visit(browser: Browser, action: Any = lambda s: None, **options: Any) -> Any:
    options.setdefault("secret_key", SECRET)
    response = await call_http(
        SessionMiddleware(app_that(action), **options), headers=browser.headers()
    )
    browser.take(response)
    return json.loads(response.text)


# --------------------------------------------------------------- split / join


def test_a_value_that_fits_is_one_unmarked_cookie() -> None:
    assert split_value("session", b"a" * 100, 2) == [b"a" * 100]


@given(size=st.integers(4000, 12000), chunks=st.integers(2, 4))
def test_split_then_join_gives_the_value_back(size: int, chunks: int) -> None:
    value = bytes(b"abcdefghij"[i % 10] for i in range(size))
    parts = split_value("session", value, chunks)
    if parts is None:
        assert size > chunks * (MAX_COOKIE_SIZE - 20)
        return
    names = ["session"] + [f"session-{i}" for i in range(1, len(parts))]
    for name, part in zip(names, parts, strict=True):
        assert len(name) + 1 + len(part) <= MAX_COOKIE_SIZE
    header = "; ".join(f"{n}={p.decode()}" for n, p in zip(names, parts, strict=True))
    joined, count = join_chunks("session", parts[0].decode(), [(b"cookie", header.encode())], 4)
    assert joined == value.decode() and count == len(parts)


@given(st.text(max_size=40))
def test_join_never_raises_on_hostile_first_cookies(first: str) -> None:
    joined, count = join_chunks("session", first, [(b"cookie", b"session-1=x")], 4)
    assert 1 <= count <= 4
    assert joined is None or joined == first or first.startswith("~")


def test_forged_counts_and_missing_parts_join_to_nothing() -> None:
    headers = [(b"cookie", b"session-1=b")]
    assert join_chunks("session", "~2~a", headers, 4) == ("ab", 2)
    assert join_chunks("session", "~3~a", headers, 4) == (None, 3)
    assert join_chunks("session", "~9~a", headers, 4) == (None, 4)
    assert join_chunks("session", "~1~a", headers, 4) == (None, 1)
    assert join_chunks("session", "~x~a", headers, 4) == (None, 1)


# -------------------------------------------------------------- middleware


async def test_a_large_session_spans_two_cookies_and_round_trips() -> None:
    browser = Browser()
    blob = "x" * 6000
    await visit(browser, lambda s: s.update(blob=blob))
    assert set(browser.jar) == {"session", "session-1"}
    assert browser.jar["session"].startswith("~2~")
    assert await visit(browser) == {"blob": blob}


@pytest.mark.parametrize("encrypt", [False, True])
async def test_shrinking_and_clearing_delete_the_parts(encrypt: bool) -> None:
    browser = Browser()
    await visit(browser, lambda s: s.update(blob="y" * 6000), encrypt=encrypt)
    assert set(browser.jar) == {"session", "session-1"}
    await visit(browser, lambda s: s.update(blob="small"), encrypt=encrypt)
    assert set(browser.jar) == {"session"}
    assert await visit(browser, encrypt=encrypt) == {"blob": "small"}
    await visit(browser, lambda s: s.update(blob="z" * 6000), encrypt=encrypt)
    await visit(browser, lambda s: s.clear(), encrypt=encrypt)
    assert browser.jar == {}


async def test_a_swapped_or_missing_part_gives_an_empty_session() -> None:
    first, second = Browser(), Browser()
    await visit(first, lambda s: s.update(user="alice", blob="a" * 6000))
    await visit(second, lambda s: s.update(user="mallory", blob="m" * 6000))
    mixed = Browser()
    mixed.jar = {"session": first.jar["session"], "session-1": second.jar["session-1"]}
    assert await visit(mixed) == {}
    missing = Browser()
    missing.jar = {"session": first.jar["session"]}
    assert await visit(missing) == {}


async def test_max_cookie_chunks_one_keeps_the_single_cookie_bound() -> None:
    browser = Browser()
    mw = SessionMiddleware(
        app_that(lambda s: s.update(blob="x" * 6000)), SECRET, max_cookie_chunks=1, oversize="keep"
    )
    response = await call_http(mw)
    assert response.header_all("set-cookie") == []
    browser.take(response)
    assert browser.jar == {}


async def test_oversize_keep_leaves_the_previous_session(caplog: pytest.LogCaptureFixture) -> None:
    browser = Browser()
    await visit(browser, lambda s: s.update(user="alice"))
    before = dict(browser.jar)
    with caplog.at_level(logging.ERROR, logger="asgi_kit.sessions"):
        await visit(browser, lambda s: s.update(blob="x" * 20000), oversize="keep")
    assert browser.jar == before
    assert any("max_cookie_chunks" in r.getMessage() for r in caplog.records)
    assert await visit(browser) == {"user": "alice"}


async def test_oversize_raise_reaches_the_app_at_send() -> None:
    seen: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["blob"] = "x" * 20000
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except SessionTooLarge as exc:
            seen.append(exc)
            await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(SessionMiddleware(app, SECRET, oversize="raise"))
    assert response.status == 500 and response.header_all("set-cookie") == []
    assert seen and "max_cookie_chunks" in str(seen[0])


def test_oversize_auto_follows_python_development_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SessionMiddleware(app_that(print), SECRET)._raise_oversize is sys.flags.dev_mode
    assert SessionMiddleware(app_that(print), SECRET, oversize="raise")._raise_oversize
    assert not SessionMiddleware(app_that(print), SECRET, oversize="keep")._raise_oversize


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_cookie_chunks": 0}, ValueError),
        ({"max_cookie_chunks": 11}, ValueError),
        ({"max_cookie_chunks": "2"}, TypeError),
        ({"max_cookie_chunks": True}, TypeError),
        ({"oversize": "drop"}, ValueError),
        ({"oversize": 1}, TypeError),
    ],
)
def test_chunk_options_are_validated(options: dict[str, Any], error: type[Exception]) -> None:
    name = next(iter(options))
    with pytest.raises(error, match=name):
        SessionMiddleware(app_that(print), SECRET, **options)
