"""SessionMiddleware with the signed-cookie store: Starlette parity and beyond."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import pickle
import runpy
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgi_kit import CookieStore, SessionMiddleware
from asgi_kit.sessions import (
    JSONSerializer,
    SerializationError,
    Session,
    SessionNotLoaded,
    load_session,
    regenerate_id,
)
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import asgi_client, call_http, websocket

SECRET = "example-secret-key"


# ---------------------------------------------------------------- test apps


def starlette_app(**options: Any) -> SessionMiddleware:
    """A Starlette app using ``request.session`` exactly as Starlette users do."""

    async def view(request: Request) -> JSONResponse:
        return JSONResponse({"session": request.session})

    async def update(request: Request) -> JSONResponse:
        request.session.update(await request.json())
        return JSONResponse({"session": request.session})

    async def clear(request: Request) -> JSONResponse:
        request.session.clear()
        return JSONResponse({"session": request.session})

    async def nothing(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"session": dict(websocket.session)})
        websocket.session["from_ws"] = True
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/view_session", view),
            Route("/update_session", update, methods=["POST"]),
            Route("/clear_session", clear, methods=["POST"]),
            Route("/nothing", nothing),
            WebSocketRoute("/ws", ws),
        ]
    )
    return SessionMiddleware(app, SECRET, **options)


def raw_app(action: Any) -> Any:
    """A raw ASGI app that runs ``action(session)`` and answers with the session as JSON."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        result = action(session)
        if hasattr(result, "__await__"):
            await result
        body = json.dumps(dict(session), default=repr).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def set_cookies(response: Any) -> list[str]:
    return list(response.headers.get_list("set-cookie"))


def cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def forge(payload: dict[str, Any], secret: str, issued: int, cookie: str = "session") -> str:
    """Build a cookie the way the middleware does (to test expiry and key checks)."""
    key = hmac.digest(
        secret.encode(), b"asgi_kit.sessions/cookie/" + cookie.encode(), hashlib.sha256
    )
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    body = body.rstrip(b"=")
    message = body + b".%d" % issued
    sig = base64.urlsafe_b64encode(hmac.digest(key, message, hashlib.sha256)).rstrip(b"=")
    return (message + b"." + sig).decode()


# ---------------------------------------------------------- Starlette parity


async def test_session_round_trip_with_starlette_request_session() -> None:
    async with asgi_client(starlette_app()) as client:
        response = await client.get("/view_session")
        assert response.json() == {"session": {}}
        assert set_cookies(response) == []

        response = await client.post("/update_session", json={"some": "data"})
        assert response.json() == {"session": {"some": "data"}}
        [header] = set_cookies(response)
        assert "httponly" in header.lower()
        assert "samesite=lax" in header.lower()
        assert "path=/" in header.lower()
        assert "max-age=1209600" in header.lower()
        assert "secure" not in header.lower()

        response = await client.get("/view_session")
        assert response.json() == {"session": {"some": "data"}}

        response = await client.post("/clear_session")
        assert response.json() == {"session": {}}
        [header] = set_cookies(response)
        assert "max-age=0" in header.lower()
        assert "expires=thu, 01 jan 1970" in header.lower()

        response = await client.get("/view_session")
        assert response.json() == {"session": {}}


async def test_cookie_only_sent_when_the_session_changed() -> None:
    async with asgi_client(starlette_app()) as client:
        await client.post("/update_session", json={"a": 1})
        assert set_cookies(await client.get("/view_session")) == []
        assert set_cookies(await client.get("/nothing")) == []
        # Writing the same keys again is still a change (Starlette semantics).
        assert len(set_cookies(await client.post("/update_session", json={"a": 2}))) == 1


async def test_clearing_an_empty_session_without_cookie_sends_nothing() -> None:
    async with asgi_client(starlette_app()) as client:
        assert set_cookies(await client.post("/clear_session")) == []


async def test_https_only_sets_secure() -> None:
    app = starlette_app(https_only=True)
    async with asgi_client(app, base_url="https://testserver") as client:
        response = await client.post("/update_session", json={"a": 1})
        assert "secure" in set_cookies(response)[0].lower()
        assert (await client.get("/view_session")).json() == {"session": {"a": 1}}


async def test_path_domain_partitioned_and_same_site() -> None:
    app = starlette_app(path="/second", domain="example.com", partitioned=True, same_site="strict")
    response = await call_http(
        app, "POST", "/update_session", body=b'{"a":1}', headers={"content-type": "x"}
    )
    header = response.header("set-cookie") or ""
    for part in ("Path=/second", "Domain=example.com", "Partitioned", "Secure", "SameSite=Strict"):
        assert part in header


async def test_same_site_none_forces_secure() -> None:
    response = await call_http(
        starlette_app(same_site="none"), "POST", "/update_session", body=b'{"a":1}'
    )
    header = response.header("set-cookie") or ""
    assert "SameSite=None" in header and "Secure" in header


async def test_max_age_none_makes_a_browser_session_cookie() -> None:
    app = starlette_app(max_age=None)
    async with asgi_client(app) as client:
        response = await client.post("/update_session", json={"a": 1})
        header = set_cookies(response)[0].lower()
        assert "max-age" not in header and "expires" not in header
        assert (await client.get("/view_session")).json() == {"session": {"a": 1}}


async def test_invalid_cookie_gives_an_empty_session_and_a_fresh_cookie_on_write() -> None:
    async with asgi_client(starlette_app()) as client:
        bad = {"cookie": "session=invalid"}
        assert (await client.get("/view_session", headers=bad)).json() == {"session": {}}
        response = await client.post("/update_session", json={"a": 1}, headers=bad)
        [header] = set_cookies(response)
        fresh = {"cookie": "session=" + cookie_value(header)}
        assert (await client.get("/view_session", headers=fresh)).json() == {"session": {"a": 1}}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.__setitem__("k", 1),
        lambda s: s.__delitem__("a"),
        lambda s: s.pop("a"),
        lambda s: s.popitem(),
        lambda s: s.setdefault("k", 1),
        lambda s: s.update(k=1),
        lambda s: s.__ior__({"k": 1}),
        lambda s: s.clear(),
        lambda s: s.mark_modified(),
    ],
    ids=["setitem", "delitem", "pop", "popitem", "setdefault", "update", "ior", "clear", "mark"],
)
async def test_every_mutating_method_marks_the_session_modified(mutate: Any) -> None:
    session = Session({"a": 1})
    mutate(session)
    assert session.modified and session.accessed


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s["a"],
        lambda s: s.get("a"),
        lambda s: "a" in s,
        lambda s: list(s),
        lambda s: len(s),
        lambda s: s.keys(),
        lambda s: s.values(),
        lambda s: s.items(),
        lambda s: s.copy(),
        lambda s: dict(s),
        lambda s: json.dumps(s),
        lambda s: s == {},
        lambda s: {**s},
        lambda s: s | {},
        lambda s: {} | s,
        lambda s: list(reversed(s)),
        lambda s: bool(s),
        lambda s: s.pop("missing", None),
        lambda s: s.setdefault("a", 2),
    ],
)
async def test_reads_mark_accessed_but_not_modified(read: Any) -> None:
    session = Session({"a": 1})
    read(session)
    assert session.accessed and not session.modified


def test_session_is_a_real_dict() -> None:
    session = Session({"a": [1, 2]})
    assert isinstance(session, dict)
    assert json.loads(json.dumps(session)) == {"a": [1, 2]}
    assert session == {"a": [1, 2]}
    assert session | {"b": 1} == {"a": [1, 2], "b": 1}
    assert pickle.loads(pickle.dumps(session)) == {"a": [1, 2]}
    assert repr(session) == "Session({'a': [1, 2]})"
    with pytest.raises(TypeError):
        hash(session)
    session |= {"b": 2}
    assert isinstance(session, Session) and session["b"] == 2


async def test_nested_mutation_needs_mark_modified() -> None:
    def nested(session: Session) -> None:
        session.setdefault("cart", [])
        session["cart"].append("apple")

    app = SessionMiddleware(raw_app(nested), SECRET)
    async with asgi_client(app) as client:
        await client.get("/")  # creates the list: saved
        await client.get("/")  # appends inside it: not visible, not saved
        assert json.loads((await client.get("/")).text)["cart"] == ["apple", "apple"]

    def nested_marked(session: Session) -> None:
        session.setdefault("cart", []).append("apple")
        session.mark_modified()

    app = SessionMiddleware(raw_app(nested_marked), SECRET)
    async with asgi_client(app) as client:
        for _ in range(3):
            response = await client.get("/")
        assert json.loads(response.text)["cart"] == ["apple"] * 3


# ------------------------------------------------------------------- Vary


async def test_vary_cookie_only_when_the_session_was_used() -> None:
    async with asgi_client(starlette_app()) as client:
        assert "vary" not in (await client.get("/nothing")).headers
        response = await client.post("/update_session", json={"a": 1})
        assert response.headers["vary"] == "Cookie"
        assert (await client.get("/view_session")).headers["vary"] == "Cookie"
        assert "vary" not in (await client.get("/nothing")).headers
    # Reading an empty session also counts.
    response = await call_http(SessionMiddleware(raw_app(lambda s: s.get("user")), SECRET))
    assert response.header("vary") == "Cookie"


async def test_vary_merges_with_the_app_vary_header() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"].get("x")
        headers = [(b"Vary", b"Accept-Encoding")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(SessionMiddleware(app, SECRET))
    assert response.header_all("vary") == ["Accept-Encoding, Cookie"]


# -------------------------------------------------------- expiry, signing


async def test_max_age_is_enforced_by_the_server() -> None:
    app = SessionMiddleware(raw_app(lambda s: None), SECRET, max_age=60)
    fresh = forge({"a": 1}, SECRET, int(time.time()) - 30)
    old = forge({"a": 1}, SECRET, int(time.time()) - 61)
    future = forge({"a": 1}, SECRET, int(time.time()) + 3600)
    assert (await call_http(app, headers={"cookie": f"session={fresh}"})).text == '{"a": 1}'
    assert (await call_http(app, headers={"cookie": f"session={old}"})).text == "{}"
    assert (await call_http(app, headers={"cookie": f"session={future}"})).text == "{}"


async def test_browser_session_cookie_has_no_server_expiry() -> None:
    app = SessionMiddleware(raw_app(lambda s: None), SECRET, max_age=None)
    ancient = forge({"a": 1}, SECRET, 1_000_000)
    assert (await call_http(app, headers={"cookie": f"session={ancient}"})).text == '{"a": 1}'


async def test_cookie_format_is_hmac_sha256_over_payload_and_timestamp() -> None:
    app = SessionMiddleware(raw_app(lambda s: s.update(user="ann")), SECRET)
    before = int(time.time())
    response = await call_http(app)
    value = cookie_value(response.header("set-cookie") or "")
    payload, issued, sig = value.split(".")
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == {"user": "ann"}
    assert before <= int(issued) <= time.time()
    assert forge({"user": "ann"}, SECRET, int(issued)).split(".")[2] == sig


async def test_key_rotation_signs_with_first_and_accepts_all() -> None:
    read = raw_app(lambda s: None)
    old_cookie = forge({"user": "old"}, "old-key", int(time.time()))
    new_cookie = forge({"user": "new"}, "new-key", int(time.time()))
    rotated = SessionMiddleware(read, ["new-key", "old-key"])
    for cookie, user in ((old_cookie, "old"), (new_cookie, "new")):
        response = await call_http(rotated, headers={"cookie": f"session={cookie}"})
        assert json.loads(response.text) == {"user": user}
    # After removing the old key its cookies are refused.
    only_new = SessionMiddleware(read, ["new-key"])
    response = await call_http(only_new, headers={"cookie": f"session={old_cookie}"})
    assert response.text == "{}"
    # New cookies are signed with the first key.
    writer = SessionMiddleware(raw_app(lambda s: s.update(a=1)), ["new-key", "old-key"])
    value = cookie_value((await call_http(writer)).header("set-cookie") or "")
    response = await call_http(only_new, headers={"cookie": f"session={value}"})
    assert response.text == '{"a": 1}'


async def test_cookie_name_is_part_of_the_signature() -> None:
    read_other = SessionMiddleware(raw_app(lambda s: None), SECRET, session_cookie="other")
    copied = forge({"admin": True}, SECRET, int(time.time()), cookie="session")
    response = await call_http(read_other, headers={"cookie": f"other={copied}"})
    assert response.text == "{}"


async def test_starlette_secret_object_is_accepted() -> None:
    from starlette.datastructures import Secret

    app = SessionMiddleware(raw_app(lambda s: None), Secret(SECRET))
    cookie = forge({"a": 1}, SECRET, int(time.time()))
    assert (await call_http(app, headers={"cookie": f"session={cookie}"})).text == '{"a": 1}'


def tampered_variants(value: str) -> list[str]:
    payload, issued, sig = value.split(".")
    other = base64.urlsafe_b64encode(b'{"user":"admin"}').rstrip(b"=").decode()
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    return [
        f"{other}.{issued}.{sig}",
        f"{payload}.{int(issued) + 1}.{sig}",
        f"{payload}.{issued}.{flipped}",
        value[:-5],
        value[: len(value) // 2],
        f"{payload}.{issued}",
        f"{payload}..{sig}",
        "",
        "null",
        "." * 50,
    ]


async def test_tampered_and_truncated_cookies_give_an_empty_session() -> None:
    writer = SessionMiddleware(raw_app(lambda s: s.update(user="ann")), SECRET)
    value = cookie_value((await call_http(writer)).header("set-cookie") or "")
    reader = SessionMiddleware(raw_app(lambda s: None), SECRET)
    assert (await call_http(reader, headers={"cookie": f"session={value}"})).text != "{}"
    for bad in tampered_variants(value):
        response = await call_http(reader, headers={"cookie": f"session={bad}"})
        assert response.status == 200 and response.text == "{}", bad


async def test_validly_signed_garbage_gives_an_empty_session() -> None:
    """Even a correctly signed cookie whose payload is not a JSON object is ignored."""
    key = hmac.digest(SECRET.encode(), b"asgi_kit.sessions/cookie/session", hashlib.sha256)
    reader = SessionMiddleware(raw_app(lambda s: None), SECRET)
    for payload in (b"\xff\xfe\x00", b"not json", b"[1,2]", b"42", b'"str"'):
        message = base64.urlsafe_b64encode(payload).rstrip(b"=") + b".%d" % int(time.time())
        for body in (message, b"!!!." + message.split(b".")[1]):
            sig = base64.urlsafe_b64encode(hmac.digest(key, body, hashlib.sha256)).rstrip(b"=")
            cookie = (body + b"." + sig).decode()
            response = await call_http(reader, headers={"cookie": f"session={cookie}"})
            assert response.status == 200 and response.text == "{}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.binary(max_size=300))
async def test_hostile_cookie_headers_never_raise(value: bytes) -> None:
    for legacy in (False, True):
        reader = SessionMiddleware(
            raw_app(lambda s: s.get("x")), SECRET, accept_starlette_cookies=legacy
        )
        response = await call_http(reader, headers=[(b"cookie", b"session=" + value)])
        assert response.status == 200
        response = await call_http(reader, headers=[(b"cookie", value)])
        assert response.status == 200


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.binary(max_size=40),
    stamp=st.binary(max_size=16),
    key=st.sampled_from([SECRET, "other"]),
)
async def test_hostile_starlette_shaped_cookies_never_raise(
    payload: bytes, stamp: bytes, key: str
) -> None:
    """Signed-looking legacy cookies, even validly signed garbage, never raise."""
    derived = hashlib.sha1(b"itsdangerous.Signersigner" + key.encode()).digest()
    signed = base64.b64encode(payload) + b"." + base64.urlsafe_b64encode(stamp).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.digest(derived, signed, hashlib.sha1)).rstrip(b"=")
    reader = SessionMiddleware(raw_app(lambda s: None), SECRET, accept_starlette_cookies=True)
    response = await call_http(reader, headers=[(b"cookie", b"session=" + signed + b"." + sig)])
    assert response.status == 200


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=5,
        ),
        max_size=5,
    )
)
async def test_any_json_session_round_trips(data: dict[str, Any]) -> None:
    writer = SessionMiddleware(raw_app(lambda s: s.update(data)), SECRET)
    response = await call_http(writer)
    if not data:
        assert response.header("set-cookie") is None
        return
    value = cookie_value(response.header("set-cookie") or "")
    reader = SessionMiddleware(raw_app(lambda s: None), SECRET)
    response = await call_http(reader, headers={"cookie": f"session={value}"})
    assert json.loads(response.text) == data


async def test_a_session_beyond_max_cookie_chunks_is_logged_and_not_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = SessionMiddleware(raw_app(lambda s: s.update(blob="x" * 20000)), SECRET, oversize="keep")
    with caplog.at_level(logging.ERROR, logger="asgi_kit.sessions"):
        response = await call_http(app)
    assert response.status == 200
    assert response.header_all("set-cookie") == []
    [record] = [r for r in caplog.records if "max_cookie_chunks" in r.getMessage()]
    assert "browser keeps its previous one" in record.getMessage()


async def test_unserialisable_value_is_a_clear_error() -> None:
    app = SessionMiddleware(raw_app(lambda s: s.update(when=object())), SECRET)
    with pytest.raises(SerializationError, match="JSON"):
        await call_http(app)

    async def app_with_error_page(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["when"] = object()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except SerializationError:
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"error"})

    response = await call_http(SessionMiddleware(app_with_error_page, SECRET))
    assert response.status == 500 and response.header("set-cookie") is None


# ------------------------------------------------------------------ rolling


async def test_rolling_resends_the_cookie_with_a_fresh_timestamp() -> None:
    old = forge({"a": 1}, SECRET, int(time.time()) - 100)
    rolling = SessionMiddleware(raw_app(lambda s: None), SECRET, rolling=True)
    response = await call_http(rolling, headers={"cookie": f"session={old}"})
    value = cookie_value(response.header("set-cookie") or "")
    assert value.split(".")[0] == old.split(".")[0]
    assert int(value.split(".")[1]) >= int(time.time()) - 1
    # No session: nothing to roll.
    assert (await call_http(rolling)).header("set-cookie") is None
    # Without rolling an unchanged session sends nothing.
    fixed = SessionMiddleware(raw_app(lambda s: None), SECRET)
    assert (await call_http(fixed, headers={"cookie": f"session={old}"})).header(
        "set-cookie"
    ) is None


# --------------------------------------------------------------- autoload


async def test_autoload_false_requires_load_session() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        with pytest.raises(SessionNotLoaded, match="load_session"):
            session.get("a")
        with pytest.raises(SessionNotLoaded):
            session["a"] = 1
        with pytest.raises(SessionNotLoaded):
            regenerate_id(scope)
        loaded = await load_session(scope)
        assert loaded is session
        assert await load_session(scope) is session  # idempotent
        seen["data"] = dict(session)
        session["b"] = 2
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    cookie = forge({"a": 1}, SECRET, int(time.time()))
    mw = SessionMiddleware(app, SECRET, autoload=False)
    response = await call_http(mw, headers={"cookie": f"session={cookie}"})
    assert seen["data"] == {"a": 1}
    value = cookie_value(response.header("set-cookie") or "")
    check = SessionMiddleware(raw_app(lambda s: None), SECRET)
    assert json.loads((await call_http(check, headers={"cookie": f"session={value}"})).text) == {
        "a": 1,
        "b": 2,
    }


async def test_autoload_false_untouched_session_sends_nothing() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert repr(scope["session"]) == "Session(<not loaded>)"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    cookie = forge({"a": 1}, SECRET, int(time.time()))
    mw = SessionMiddleware(app, SECRET, autoload=False, rolling=True)
    response = await call_http(mw, headers={"cookie": f"session={cookie}"})
    assert response.header("set-cookie") is None and response.header("vary") is None


async def test_load_session_accepts_a_request_and_explains_a_missing_middleware() -> None:
    async def view(request: Request) -> JSONResponse:
        session = await load_session(request)
        return JSONResponse(dict(session))

    app = SessionMiddleware(Starlette(routes=[Route("/", view)]), SECRET, autoload=False)
    cookie = forge({"a": 1}, SECRET, int(time.time()))
    async with asgi_client(app, cookies={"session": cookie}) as client:
        assert (await client.get("/")).json() == {"a": 1}

    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        await load_session({"type": "http"})
    with pytest.raises(TypeError):
        await load_session(42)


# --------------------------------------------------- websocket, lifespan, asgi2


async def test_websocket_sees_the_session_read_only(caplog: pytest.LogCaptureFixture) -> None:
    app = starlette_app()
    cookie = forge({"user": "ann"}, SECRET, int(time.time()))
    scope_headers = {"cookie": f"session={cookie}"}
    with caplog.at_level(logging.WARNING, logger="asgi_kit.sessions"):
        async with websocket(app, headers=scope_headers) as ws:
            await ws.send_input({"type": "websocket.connect"})
            assert (await ws.receive_output())["type"] == "websocket.accept"
            message = await ws.receive_output()
            assert json.loads(message["text"]) == {"session": {"user": "ann"}}
            assert (await ws.receive_output())["type"] == "websocket.close"
            await ws.wait(timeout=5)
    assert any("WebSocket cannot set cookies" in r.getMessage() for r in caplog.records)


async def test_lifespan_passes_through_untouched() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    await SessionMiddleware(app, SECRET)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == [{"type": "lifespan"}]


async def test_asgi2_app_is_wrapped() -> None:
    class ASGI2:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            self.scope["session"]["asgi2"] = True
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    response = await call_http(SessionMiddleware(ASGI2, SECRET))
    assert response.text == "ok" and "session=" in (response.header("set-cookie") or "")


async def test_app_replacing_scope_session_is_saved() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"] = {"replaced": True}
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(SessionMiddleware(app, SECRET))
    value = cookie_value(response.header("set-cookie") or "")
    check = SessionMiddleware(raw_app(lambda s: None), SECRET)
    response = await call_http(check, headers={"cookie": f"session={value}"})
    assert json.loads(response.text) == {"replaced": True}


async def test_nested_middlewares_keep_their_own_sessions() -> None:
    inner = SessionMiddleware(raw_app(lambda s: s.update(inner=True)), SECRET, session_cookie="in")
    outer = SessionMiddleware(inner, SECRET, session_cookie="out")
    response = await call_http(outer)
    # The app only sees (and changes) the innermost session; the outer one is
    # untouched and must not save the inner one's data under its own cookie.
    assert [h.split("=", 1)[0] for h in response.header_all("set-cookie")] == ["in"]


async def test_regenerate_id_with_cookie_store_reissues_the_cookie() -> None:
    cookie = forge({"a": 1}, SECRET, int(time.time()) - 10)
    app = SessionMiddleware(raw_app(lambda s: regenerate_id({"session": s})), SECRET)
    response = await call_http(app, headers={"cookie": f"session={cookie}"})
    value = cookie_value(response.header("set-cookie") or "")
    assert value != cookie and value.split(".")[0] == cookie.split(".")[0]


async def test_other_cookies_are_left_alone() -> None:
    cookie = forge({"a": 1}, SECRET, int(time.time()))
    app = SessionMiddleware(raw_app(lambda s: None), SECRET)
    headers = [(b"Cookie", f"theme=dark; session={cookie}; other=1".encode())]
    assert (await call_http(app, headers=headers)).text == '{"a": 1}'


async def test_the_first_validly_signed_of_several_same_named_cookies_wins() -> None:
    # A stale cookie from another path/domain (or another app) sent first
    # must not hide the real session, or the user could never stay logged in.
    good = forge({"user": "ann"}, SECRET, int(time.time()))
    stale = forge({"user": "old"}, "another-secret", int(time.time()))
    app = SessionMiddleware(raw_app(lambda s: None), SECRET)
    for cookie_headers in (
        [(b"cookie", f"session={stale}; session={good}".encode())],
        [(b"cookie", b"session=garbage; theme=dark"), (b"Cookie", f"session={good}".encode())],
        [(b"cookie", f"session={good}; session={stale}".encode())],
    ):
        assert (await call_http(app, headers=cookie_headers)).text == '{"user": "ann"}'

    # The same with autoload=False: load_session() finds it too.
    async def lazy_app(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps(dict(await load_session(scope))).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    lazy = SessionMiddleware(lazy_app, SECRET, autoload=False)
    headers = [(b"cookie", f"session={stale}; session={good}".encode())]
    assert (await call_http(lazy, headers=headers)).text == '{"user": "ann"}'
    # None valid: an empty session, as with one bad cookie.
    headers = [(b"cookie", f"session={stale}; session=x".encode())]
    assert (await call_http(app, headers=headers)).text == "{}"
    # A few stale ones are looked past; a header stuffed with signature-shaped
    # fakes is not verified one by one.
    few = "; ".join([f"session={stale}"] * 4 + [f"session={good}"])
    assert (await call_http(app, headers=[(b"cookie", few.encode())])).text == '{"user": "ann"}'
    many = "; ".join([f"session={stale}"] * 50 + [f"session={good}"])
    assert (await call_http(app, headers=[(b"cookie", many.encode())])).text == "{}"


# ------------------------------------------------------------------ options


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"secret_key": ""}, ValueError, "secret_key"),
        ({"secret_key": []}, ValueError, "secret_key"),
        ({"secret_key": ["ok", ""]}, ValueError, "secret_key"),
        ({"secret_key": None}, TypeError, "secret_key"),
        ({"secret_key": 123}, TypeError, "secret_key"),
        ({"same_site": "sometimes"}, ValueError, "same_site"),
        ({"max_age": -1}, ValueError, "max_age"),
        ({"max_age": 0}, ValueError, "max_age"),
        ({"max_age": 1.5}, TypeError, "max_age"),
        ({"session_cookie": ""}, ValueError, "session_cookie"),
        ({"session_cookie": "bad name"}, ValueError, "cookie name"),
        ({"path": "/a;b"}, ValueError, "path"),
        ({"domain": "a\r\nb"}, ValueError, "domain"),
        ({"https_only": "yes"}, TypeError, "https_only"),
        ({"rolling": 1}, TypeError, "rolling"),
        ({"autoload": None}, TypeError, "autoload"),
        ({"store": {}}, TypeError, "store"),
    ],
)
def test_invalid_options_are_rejected(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    kwargs: dict[str, Any] = {"secret_key": SECRET, **options}
    with pytest.raises(error, match=match):
        SessionMiddleware(raw_app(lambda s: None), **kwargs)


def test_same_site_is_case_insensitive_and_store_defaults_to_cookie() -> None:
    middleware = SessionMiddleware(raw_app(lambda s: None), SECRET, same_site="Strict")
    assert isinstance(middleware.store, CookieStore)
    with pytest.raises(TypeError, match="serializer"):
        CookieStore(serializer=object())  # type: ignore[arg-type]


async def test_custom_serializer_for_cookie_store() -> None:
    class Tagged(JSONSerializer):
        def dumps(self, data: dict[str, Any]) -> bytes:
            return b"v1:" + super().dumps(data)

        def loads(self, data: bytes) -> Any:
            assert data.startswith(b"v1:")
            return super().loads(data[3:])

    store = CookieStore(serializer=Tagged())
    writer = SessionMiddleware(raw_app(lambda s: s.update(a=1)), SECRET, store=store)
    value = cookie_value((await call_http(writer)).header("set-cookie") or "")
    assert base64.urlsafe_b64decode(value.split(".")[0] + "==").startswith(b"v1:")
    reader = SessionMiddleware(raw_app(lambda s: None), SECRET, store=store)
    assert (await call_http(reader, headers={"cookie": f"session={value}"})).text == '{"a": 1}'


async def test_examples_run() -> None:
    examples = Path(__file__).parent.parent / "examples"
    raw_example = runpy.run_path(str(examples / "sessions_raw.py"))["app"]
    fastapi_app = runpy.run_path(str(examples / "sessions_fastapi.py"))["app"]

    async with asgi_client(raw_example) as client:
        assert (await client.get("/")).json() == {"visits": 1}
        assert (await client.get("/")).json() == {"visits": 2}
        assert (await client.get("/reset")).json() == {}

    async with asgi_client(fastapi_app) as client:
        assert (await client.get("/me")).status_code == 401
        assert (await client.post("/login", json={"user": "ann"})).status_code == 200
        assert (await client.get("/me")).json() == {"user": "ann"}
        await client.post("/logout")
        assert (await client.get("/me")).status_code == 401


# ------------------------------------------------------- Starlette migration


async def starlette_cookie(data: dict[str, Any], secret: str = SECRET, **options: Any) -> str:
    """A cookie written by Starlette's own SessionMiddleware."""
    from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

    app = StarletteSessions(raw_app(lambda s: s.update(data)), secret, **options)
    response = await call_http(app)
    return cookie_value(response.header("set-cookie") or "")


async def test_starlette_cookies_are_migrated_when_enabled() -> None:
    legacy = await starlette_cookie({"user": "ann"})
    headers = {"cookie": f"session={legacy}"}
    plain = SessionMiddleware(raw_app(lambda s: None), SECRET)
    assert (await call_http(plain, headers=headers)).text == "{}"

    migrating = SessionMiddleware(raw_app(lambda s: None), SECRET, accept_starlette_cookies=True)
    response = await call_http(migrating, headers=headers)
    assert json.loads(response.text) == {"user": "ann"}
    value = cookie_value(response.header("set-cookie") or "")
    assert value != legacy
    # The re-issued cookie is in asgi_kit's format.
    response = await call_http(plain, headers={"cookie": f"session={value}"})
    assert json.loads(response.text) == {"user": "ann"}


async def test_starlette_cookie_migration_checks_secret_expiry_and_tampering() -> None:
    migrating = SessionMiddleware(
        raw_app(lambda s: None), ["new", SECRET], accept_starlette_cookies=True, max_age=60
    )
    wrong_secret = await starlette_cookie({"user": "ann"}, secret="other")
    legacy = await starlette_cookie({"user": "ann"})
    payload, stamp, sig = legacy.split(".")
    old_stamp = base64.urlsafe_b64encode((int(time.time()) - 120).to_bytes(4, "big"))
    expired = f"{payload}.{old_stamp.decode().rstrip('=')}.{sig}"
    tampered = base64.b64encode(b'{"user": "admin"}').decode() + f".{stamp}.{sig}"
    for bad in (wrong_secret, expired, tampered, legacy[:-1], legacy + "x"):
        response = await call_http(migrating, headers={"cookie": f"session={bad}"})
        assert response.status == 200 and response.text == "{}", bad
        assert response.header("set-cookie") is None
    response = await call_http(migrating, headers={"cookie": f"session={legacy}"})
    assert json.loads(response.text) == {"user": "ann"}


async def test_starlette_cookies_move_into_a_server_side_store() -> None:
    from asgi_kit import MemoryStore

    store = MemoryStore()
    legacy = await starlette_cookie({"user": "ann"})
    app = SessionMiddleware(
        raw_app(lambda s: None), SECRET, store=store, accept_starlette_cookies=True
    )
    response = await call_http(app, headers={"cookie": f"session={legacy}"})
    session_id = cookie_value(response.header("set-cookie") or "").rsplit(".", 1)[0]
    assert await store.load(session_id) == {"user": "ann"}
