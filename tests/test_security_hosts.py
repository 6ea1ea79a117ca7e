"""TrustedHostMiddleware: Starlette's own cases, then strict Host parsing, IPv6 and ports."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_kit import TrustedHostMiddleware
from asgi_kit.security._host import parse_host
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http, websocket, websocket_scope


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"OK"})


def starlette_app(**options: Any) -> Starlette:
    def homepage(request: Request) -> PlainTextResponse:
        return PlainTextResponse("OK", status_code=200)

    return Starlette(
        routes=[Route("/", endpoint=homepage)],
        middleware=[Middleware(TrustedHostMiddleware, **options)],
    )


def client(app: Any, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


# --------------------------------------------------------------- Starlette's cases


async def test_starlette_allowed_wildcard_and_invalid_host() -> None:
    app = starlette_app(allowed_hosts=["testserver", "*.testserver"])
    for base, expected in (
        ("http://testserver", 200),
        ("http://subdomain.testserver", 200),
        ("http://invalidhost", 400),
    ):
        async with client(app, base) as c:
            response = await c.get("/")
        assert response.status_code == expected, base
    async with client(app, "http://invalidhost") as c:
        assert (await c.get("/")).text == "Invalid host header"


def test_starlette_default_allowed_hosts() -> None:
    assert TrustedHostMiddleware(ok).allowed_hosts == ["*"]
    assert TrustedHostMiddleware(ok, allowed_hosts=None).allowed_hosts == ["*"]


async def test_starlette_www_redirect() -> None:
    app = starlette_app(allowed_hosts=["www.example.com"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://example.com",
        follow_redirects=True,
    ) as c:  # fmt: skip
        response = await c.get("/")
    assert response.status_code == 200
    assert str(response.url) == "https://www.example.com/"


@pytest.mark.parametrize(
    "pattern", ["*.*.example.com", "example.*", "*example.com", "ex*ample.com"]
)
def test_starlette_wildcard_patterns_enforced(pattern: str) -> None:
    with pytest.raises(ValueError, match="first label"):
        TrustedHostMiddleware(ok, allowed_hosts=[pattern])


# --------------------------------------------------------------- beyond Starlette


async def host_status(middleware: Any, *hosts: str, scheme: str = "http") -> int:
    headers = [("host", h) for h in hosts]
    return (await call_http(middleware, headers=headers, scheme=scheme)).status


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", 200),
        ("EXAMPLE.com", 200),
        ("example.com.", 200),
        ("example.com:8000", 200),  # no port in the pattern: any port
        ("api.example.com", 200),
        ("a.b.example.com", 200),
        ("notexample.com", 400),
        ("example.com.evil.org", 400),
        ("evil.org", 400),
        ("pinned.example.org:8443", 200),
        ("pinned.example.org", 400),  # pattern names 8443; http default is 80
        ("pinned.example.org:8444", 400),
        ("[::1]", 200),
        ("[0:0:0:0:0:0:0:1]:9000", 200),
        ("[::2]", 400),
        ("[::1", 400),
        ("::1", 400),
        ("127.0.0.1:5000", 200),
        ("127.0.0.2", 400),
        ("", 400),
        ("example.com:", 400),
        ("example.com:99999", 400),
        ("example.com:80:80", 400),
        ("user@example.com", 400),
        ("example.com/path", 400),
        ("exa mple.com", 400),
        ("[fe80::1%25eth0]", 400),
        ("-example.com", 400),
    ],
)
async def test_host_matching(host: str, expected: int) -> None:
    middleware = TrustedHostMiddleware(
        ok,
        allowed_hosts=["example.com", "*.example.com", "pinned.example.org:8443", "[::1]",
                       "127.0.0.1"],
    )  # fmt: skip
    assert await host_status(middleware, host) == expected


async def test_default_port_counts_for_a_pinned_pattern() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["secure.example:443"])
    assert await host_status(middleware, "secure.example", scheme="https") == 200
    assert await host_status(middleware, "secure.example", scheme="http") == 400
    assert await host_status(middleware, "secure.example:443", scheme="http") == 200


async def test_missing_or_repeated_host_is_400() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["example.com"])
    assert await host_status(middleware) == 400  # HTTP/1.0 without Host
    assert await host_status(middleware, "example.com", "example.com") == 400
    assert await host_status(middleware, "example.com", "evil.org") == 400


async def test_allow_any_checks_nothing() -> None:
    assert await host_status(TrustedHostMiddleware(ok), "not a host!") == 200


async def test_www_redirect_keeps_scheme_port_path_and_query() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["www.example.com"])
    response = await call_http(
        middleware,
        path="/a b/ü",
        headers={"host": "example.com:8080"},
        query_string=b"x=1&y=%20",
        scheme="https",
        raw_path=b"/a%20b/%C3%BC",
    )
    assert response.status == 307
    assert response.header("location") == "https://www.example.com:8080/a%20b/%C3%BC?x=1&y=%20"
    off = TrustedHostMiddleware(ok, allowed_hosts=["www.example.com"], www_redirect=False)
    assert await host_status(off, "example.com") == 400


async def test_exclude_paths_for_health_checks() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["example.com"], exclude_paths=["/health"])
    assert (await call_http(middleware, path="/health", headers={"host": "10.0.0.7"})).status == 200
    assert (await call_http(middleware, path="/other", headers={"host": "10.0.0.7"})).status == 400


async def test_host_header_names_in_any_case() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["example.com"])
    scope_headers = [(b"Host", b"example.com")]
    response = await call_http(middleware, headers=scope_headers)
    assert response.status == 200


@pytest.mark.parametrize("extension", [False, True])
async def test_websocket_bad_host_refused(extension: bool) -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["example.com"])
    scope = websocket_scope(headers={"host": "evil.org"}, http_response_extension=extension)
    async with websocket(middleware, scope) as ws:
        await ws.send_input({"type": "websocket.connect"})
        answer = await ws.receive_output()
    if extension:
        assert answer["status"] == 400
    else:
        assert answer["type"] == "websocket.close"
    good = websocket_scope(headers={"host": "example.com"})
    async with websocket(middleware, good) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert await ws.receive_output() == {"type": "websocket.accept"}


async def test_lifespan_passes() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await TrustedHostMiddleware(inner, allowed_hosts=["a.example"])(
        {"type": "lifespan"},
        None,
        None,  # type: ignore[arg-type]
    )
    assert seen == ["lifespan"]


def test_parse_host() -> None:
    assert parse_host("Example.COM.:8080") == ("example.com", 8080)
    assert parse_host("[0::1]") == ("[::1]", None)
    assert parse_host("[::1]x") is None
    assert parse_host("a" * 64 + ".com") is None


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"allowed_hosts": "example.com"}, TypeError, "allowed_hosts"),
        ({"allowed_hosts": []}, ValueError, "at least one"),
        ({"allowed_hosts": [5]}, TypeError, "allowed_hosts"),
        ({"allowed_hosts": ["https://example.com"]}, ValueError, "no scheme"),
        ({"allowed_hosts": ["::1"]}, ValueError, "brackets"),
        ({"allowed_hosts": ["bücher.de"]}, ValueError, "punycode"),
        ({"allowed_hosts": ["example.com:0x50"]}, ValueError, "allowed_hosts"),
        ({"www_redirect": "yes"}, TypeError, "www_redirect"),
    ],
)
def test_invalid_options(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        TrustedHostMiddleware(ok, **options)
