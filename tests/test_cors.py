"""CORSMiddleware: the cases Starlette's own CORS tests cover, then asgi_kit's rules."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.middleware.cors import CORSMiddleware as StarletteCORS

from asgi_kit import CORSMiddleware
from asgi_kit.cors import ALL_METHODS, normalize_origin
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import (
    CapturedResponse,
    asgi_client,
    call_http,
    http_scope,
    streaming_app,
    websocket,
)

PREFLIGHT = {"Origin": "https://example.org", "Access-Control-Request-Method": "GET"}


def make_app(
    headers: list[tuple[bytes, bytes]] | None = None, calls: list[Scope] | None = None
) -> Any:
    """A raw app answering ``Homepage``; ``calls`` records the scopes it saw."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if calls is not None:
            calls.append(scope)
        raw = [(b"content-type", b"text/plain"), *(headers or [])]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": b"Homepage"})

    return app


def cors(**options: Any) -> CORSMiddleware:
    return CORSMiddleware(make_app(), **options)


async def preflight(
    app: Any, origin: str, method: str = "GET", request_headers: str | None = None
) -> CapturedResponse:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers is not None:
        headers["Access-Control-Request-Headers"] = request_headers
    return await call_http(app, "OPTIONS", headers=headers)


def vary(response: CapturedResponse) -> set[str] | None:
    values = response.header_all("vary")
    if not values:
        return None
    assert len(values) == 1, f"duplicate Vary headers: {values}"
    return {v.strip() for v in values[0].split(",") if v.strip()}


def listed(response: CapturedResponse, name: str) -> set[str]:
    value = response.header(name)
    assert value is not None, f"{name} missing"
    return {v.strip().lower() for v in value.split(",") if v.strip()}


def assert_no_duplicates(response: CapturedResponse) -> None:
    names = [k.lower() for k, _ in response.headers]
    assert len(names) == len(set(names)), f"duplicate headers in {response.headers}"


ALL_PREFLIGHT_VARY = {
    "Origin",
    "Access-Control-Request-Method",
    "Access-Control-Request-Headers",
    "Access-Control-Request-Private-Network",
}


# --------------------------------------------------------------------------- Starlette's cases


async def test_allow_all_with_credentials_reflects_origin() -> None:
    app = cors(
        allow_origins=["*"],
        allow_headers=["*"],
        allow_methods=["*"],
        expose_headers=["X-Status"],
        allow_credentials=True,
    )
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "X-Example"}
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.status == 200
    assert response.text == "OK"
    assert response.header("access-control-allow-origin") == "https://example.org"
    assert listed(response, "access-control-allow-headers") == {"x-example"}
    assert response.header("access-control-allow-credentials") == "true"
    assert vary(response) == ALL_PREFLIGHT_VARY
    assert {m.strip() for m in response.header("access-control-allow-methods").split(",")} == set(
        ALL_METHODS
    )

    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.text == "Homepage"
    assert response.header("access-control-allow-origin") == "https://example.org"
    assert response.header("access-control-expose-headers") == "X-Status"
    assert response.header("access-control-allow-credentials") == "true"
    assert vary(response) == {"Origin"}

    response = await call_http(app)
    assert response.header("access-control-allow-origin") is None
    assert vary(response) == {"Origin"}


async def test_allow_all_without_credentials_sends_star() -> None:
    app = cors(
        allow_origins=["*"], allow_headers=["*"], allow_methods=["*"], expose_headers=["X-Status"]
    )
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "X-Example"}
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.status == 200
    assert response.text == "OK"
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert response.header("content-length") == "2"
    assert_no_duplicates(response)
    assert response.header("access-control-allow-origin") == "*"
    assert listed(response, "access-control-allow-headers") == {"x-example"}
    assert response.header("access-control-allow-credentials") is None
    assert vary(response) == ALL_PREFLIGHT_VARY

    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header("access-control-allow-origin") == "*"
    assert response.header("access-control-expose-headers") == "X-Status"
    assert response.header("access-control-allow-credentials") is None
    assert vary(response) is None


async def test_specific_origin() -> None:
    app = cors(allow_origins=["https://example.org"], allow_headers=["X-Example", "Content-Type"])
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "X-Example, Content-Type"}
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.status == 200
    assert response.header("access-control-allow-origin") == "https://example.org"
    # Only what was asked for (Starlette lists every configured name; both satisfy browsers).
    assert listed(response, "access-control-allow-headers") == {"x-example", "content-type"}
    assert response.header("access-control-allow-credentials") is None
    assert response.header("access-control-allow-methods") == "GET"
    assert vary(response) == ALL_PREFLIGHT_VARY

    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header("access-control-allow-origin") == "https://example.org"
    assert vary(response) == {"Origin"}

    response = await call_http(app, headers={"Origin": "https://another.org"})
    assert response.status == 200
    assert response.text == "Homepage"
    assert response.header("access-control-allow-origin") is None
    assert vary(response) == {"Origin"}

    response = await call_http(app)
    assert response.header("access-control-allow-origin") is None


async def test_disallowed_preflight_lists_every_reason() -> None:
    calls: list[Scope] = []
    app = CORSMiddleware(
        make_app(calls=calls), allow_origins=["https://example.org"], allow_headers=["X-Example"]
    )
    response = await preflight(app, "https://another.org", "POST", "X-Nope")
    assert response.status == 400
    assert response.text == "Disallowed CORS origin, method, headers"
    assert response.header("content-type") == "text/plain; charset=utf-8"
    for name in ("origin", "methods", "headers", "credentials"):
        assert response.header(f"access-control-allow-{name}") is None
    assert response.header("access-control-max-age") is None
    assert vary(response) == ALL_PREFLIGHT_VARY

    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "X-Nope-1, X-Nope-2"}
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.text == "Disallowed CORS headers"
    assert calls == []  # a preflight never reaches the app


async def test_preflight_allow_all_methods() -> None:
    app = cors(allow_origins=["*"], allow_methods=["*"])
    response = await call_http(
        app, "OPTIONS", headers={**PREFLIGHT, "Access-Control-Request-Method": "POST"}
    )
    assert response.status == 200
    assert listed(response, "access-control-allow-methods") == {m.lower() for m in ALL_METHODS}


@pytest.mark.parametrize("method", ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"])
async def test_actual_requests_of_every_method_reach_the_app(method: str) -> None:
    calls: list[Scope] = []
    app = CORSMiddleware(make_app(calls=calls), allow_origins=["*"], allow_methods=["*"])
    response = await call_http(app, method, headers={"Origin": "https://example.org"})
    assert response.status == 200
    assert len(calls) == 1
    assert response.header("access-control-allow-origin") == "*"


async def test_origin_regex() -> None:
    app = cors(
        allow_headers=["X-Example", "Content-Type"],
        allow_origin_regex="https://.*",
        allow_credentials=True,
    )
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header("access-control-allow-origin") == "https://example.org"
    assert response.header("access-control-allow-credentials") == "true"
    assert vary(response) == {"Origin"}

    response = await call_http(app, headers={"Origin": "http://example.org"})
    assert response.text == "Homepage"
    assert response.header("access-control-allow-origin") is None
    assert response.header("access-control-allow-credentials") is None
    assert vary(response) == {"Origin"}

    response = await preflight(app, "https://another.com", "GET", "X-Example, content-type")
    assert response.status == 200
    assert response.header("access-control-allow-origin") == "https://another.com"
    assert listed(response, "access-control-allow-headers") == {"x-example", "content-type"}
    assert response.header("access-control-allow-credentials") == "true"
    assert vary(response) == ALL_PREFLIGHT_VARY

    response = await preflight(app, "http://another.com", "GET", "X-Example")
    assert response.status == 400
    assert response.text == "Disallowed CORS origin"
    assert response.header("access-control-allow-origin") is None


async def test_origin_regex_must_match_in_full() -> None:
    app = cors(allow_origin_regex=r"https://.*\.example\.org")
    response = await call_http(app, headers={"Origin": "https://sub.example.org"})
    assert response.header("access-control-allow-origin") == "https://sub.example.org"
    assert response.header("access-control-allow-credentials") is None
    response = await call_http(app, headers={"Origin": "https://sub.example.org.hacker.com"})
    assert response.header("access-control-allow-origin") is None
    assert vary(response) == {"Origin"}


async def test_vary_is_merged_never_clobbered() -> None:
    accept = [(b"vary", b"Accept-Encoding")]
    app = CORSMiddleware(make_app(accept), allow_origins=["https://example.org"])
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header("access-control-allow-origin") == "https://example.org"
    assert vary(response) == {"Accept-Encoding", "Origin"}

    app = CORSMiddleware(make_app(accept), allow_origins=["*"])
    response = await call_http(app, headers={"Origin": "https://someplace.org"})
    assert response.header("access-control-allow-origin") == "*"
    assert vary(response) == {"Accept-Encoding"}

    app = CORSMiddleware(make_app(accept), allow_origins=["*"], allow_credentials=True)
    response = await call_http(
        app, headers={"Cookie": "foo=bar", "Origin": "https://someplace.org"}
    )
    assert response.header("access-control-allow-origin") == "https://someplace.org"
    assert response.header("access-control-allow-credentials") == "true"
    assert vary(response) == {"Accept-Encoding", "Origin"}


async def test_preflight_vary_wildcard_origins_still_names_origin() -> None:
    # With "*" origins the answer still depends on Origin ("null" is refused),
    # so a cache must not hand one origin's preflight answer to another.
    app = cors(allow_origins=["*"], allow_methods=["GET", "POST"])
    ok = await preflight(app, "https://example.org", "POST")
    refused = await preflight(app, "null", "POST")
    assert (ok.status, refused.status) == (200, 400)
    assert vary(ok) == vary(refused) == ALL_PREFLIGHT_VARY


async def test_preflight_vary_wildcard_methods_still_names_method() -> None:
    # "*" methods is a finite list: a method outside it is refused.
    app = cors(allow_origins=["https://example.org"], allow_methods=["*"])
    ok = await preflight(app, "https://example.org", "POST")
    refused = await preflight(app, "https://example.org", "BREW")
    assert (ok.status, refused.status) == (200, 400)
    assert vary(ok) == vary(refused) == ALL_PREFLIGHT_VARY


@pytest.mark.parametrize("allow_headers", [["*"], ["X-Example"], ["x-example"]])
async def test_preflight_echoes_requested_header_names_as_sent(allow_headers: list[str]) -> None:
    app = cors(allow_origins=["https://example.org"], allow_headers=allow_headers)
    response = await preflight(app, "https://example.org", "GET", "X-Example, Content-Type")
    assert response.status == 200
    assert response.header("access-control-allow-headers") == "X-Example, Content-Type"


async def test_allowed_origin_does_not_leak_between_requests() -> None:
    app = cors(
        allow_origins=["*"], allow_headers=["*"], allow_methods=["*"], allow_credentials=True
    )
    for origin in ("https://first.example", "https://second.example", "https://first.example"):
        response = await call_http(app, headers={"Origin": origin, "Cookie": "a=b"})
        assert response.header("access-control-allow-origin") == origin
        assert response.header("access-control-allow-credentials") == "true"


async def test_private_network_access_allowed() -> None:
    app = cors(allow_origins=["*"], allow_methods=["*"], allow_private_network=True)
    with_pna = {**PREFLIGHT, "Access-Control-Request-Private-Network": "true"}
    response = await call_http(app, "OPTIONS", headers=with_pna)
    assert response.status == 200
    assert response.text == "OK"
    assert response.header("access-control-allow-private-network") == "true"
    assert vary(response) == ALL_PREFLIGHT_VARY

    response = await call_http(app, "OPTIONS", headers=PREFLIGHT)
    assert response.status == 200
    assert response.header("access-control-allow-private-network") is None

    response = await call_http(app, "GET", headers=with_pna)
    assert response.text == "Homepage"
    assert response.header("access-control-allow-private-network") is None
    assert response.header("access-control-allow-origin") == "*"


async def test_private_network_access_disallowed() -> None:
    app = cors(allow_origins=["*"], allow_methods=["*"])
    response = await call_http(app, "OPTIONS", headers=PREFLIGHT)
    assert response.status == 200
    assert response.header("access-control-allow-private-network") is None

    with_pna = {**PREFLIGHT, "Access-Control-Request-Private-Network": "true"}
    response = await call_http(app, "OPTIONS", headers=with_pna)
    assert response.status == 400
    assert response.text == "Disallowed CORS private-network"
    assert response.header("access-control-allow-private-network") is None
    assert vary(response) == ALL_PREFLIGHT_VARY


@pytest.mark.parametrize(
    "options",
    [
        {"allow_origins": ["*"]},
        {"allow_origin_regex": r".*"},
        {"allow_origin_regex": r"null|https://.*"},
        {"allow_origins": ["*"], "allow_credentials": True},
    ],
)
async def test_null_origin_needs_to_be_listed(options: dict[str, Any]) -> None:
    app = cors(**options)
    response = await call_http(
        app, "OPTIONS", headers={"Origin": "null", "Access-Control-Request-Method": "GET"}
    )
    assert response.status == 400
    assert response.text == "Disallowed CORS origin"
    response = await call_http(app, headers={"Origin": "null"})
    assert response.status == 200
    assert response.header("access-control-allow-origin") is None
    assert vary(response) == {"Origin"}
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header("access-control-allow-origin") in ("*", "https://example.org")


async def test_null_origin_explicitly_allowed() -> None:
    app = cors(allow_origins=["null", "https://example.org"])
    response = await call_http(
        app, "OPTIONS", headers={"Origin": "null", "Access-Control-Request-Method": "GET"}
    )
    assert response.status == 200
    assert response.header("access-control-allow-origin") == "null"
    response = await call_http(app, headers={"Origin": "null"})
    assert response.header("access-control-allow-origin") == "null"


async def test_requested_method_is_case_sensitive() -> None:
    app = cors(allow_origins=["https://example.org"], allow_methods=["POST"])
    headers = {**PREFLIGHT, "Access-Control-Request-Method": "POST"}
    assert (await call_http(app, "OPTIONS", headers=headers)).status == 200
    headers["Access-Control-Request-Method"] = "post"
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.status == 400
    assert response.text == "Disallowed CORS method"


async def test_configured_methods_fetch_upper_cases_are_normalised() -> None:
    # Browsers upper-case GET/POST/... in requests, so "post" configured means POST.
    app = cors(allow_origins=["https://example.org"], allow_methods=["post", "patch"])
    assert app.allow_methods == ("POST", "patch")
    headers = {**PREFLIGHT, "Access-Control-Request-Method": "POST"}
    assert (await call_http(app, "OPTIONS", headers=headers)).status == 200


async def test_empty_origin_list_allows_nothing() -> None:
    app = cors(allow_origins=[])
    response = await call_http(app, "OPTIONS", headers=PREFLIGHT)
    assert response.status == 400
    assert response.header("access-control-allow-origin") is None
    assert vary(response) == ALL_PREFLIGHT_VARY
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header("access-control-allow-origin") is None
    assert vary(response) == {"Origin"}


async def test_origin_list_and_regex_together() -> None:
    app = cors(
        allow_origins=["https://example.org"], allow_origin_regex=r"https://.*\.trusted\.com"
    )
    for origin, allowed in [
        ("https://example.org", True),
        ("https://api.trusted.com", True),
        ("https://evil.com", False),
    ]:
        response = await call_http(app, headers={"Origin": origin})
        assert response.header("access-control-allow-origin") == (origin if allowed else None)


async def test_max_age() -> None:
    response = await call_http(cors(allow_origins=["*"]), "OPTIONS", headers=PREFLIGHT)
    assert response.header("access-control-max-age") == "600"
    response = await call_http(
        cors(allow_origins=["*"], max_age=7200), "OPTIONS", headers=PREFLIGHT
    )
    assert response.header("access-control-max-age") == "7200"


async def test_request_without_origin_gets_only_vary_origin() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"Vary", b"Accept-Encoding"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"x"})

    for options in (
        {"allow_origins": ["*"], "allow_credentials": True},
        {"allow_origins": ["https://a.example"]},
    ):
        response = await call_http(CORSMiddleware(app, **options))  # type: ignore[arg-type]
        assert response.status == 200
        assert response.header_all("vary") == ["Accept-Encoding, Origin"]
        assert not [k for k, _ in response.headers if k.lower().startswith(b"access-control")]
        assert response.body == b"x"


async def test_requested_header_names_are_case_insensitive() -> None:
    app = cors(allow_origins=["*"], allow_headers=["X-Custom-Header"])
    for requested in ("x-custom-header", "X-CUSTOM-HEADER"):
        headers = {**PREFLIGHT, "Access-Control-Request-Headers": requested}
        response = await call_http(app, "OPTIONS", headers=headers)
        assert response.status == 200
        assert listed(response, "access-control-allow-headers") == {"x-custom-header"}


# --------------------------------------------------------------------------- origins


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://example.com", "https://example.com"),
        ("HTTPS://Example.COM", "https://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:443", "http://example.com:443"),
        ("https://example.com:0443", "https://example.com"),
        ("wss://example.com:443", "wss://example.com"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://127.0.0.1", "http://127.0.0.1"),
        ("chrome-extension://abcdef", "chrome-extension://abcdef"),
        ("capacitor://localhost", "capacitor://localhost"),
        ("null", "null"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("https://example.com/", None),
        ("https://example.com/path", None),
        ("https://user@example.com", None),
        ("https://example.com:99999", None),
        ("https://example.com:", None),
        ("https://", None),
        ("example.com", None),
        ("https://*.example.com", None),
        ("https://bücher.example", None),
        ("", None),
        ("NULL", None),
        ("https://example.com\r\nX-Evil: 1", None),
    ],
)
def test_normalize_origin(origin: str, expected: str | None) -> None:
    assert normalize_origin(origin) == expected


async def test_origins_compare_after_normalisation() -> None:
    app = cors(allow_origins=["HTTPS://Example.org:443", "http://localhost:8000"])
    for origin in ("https://example.org", "https://EXAMPLE.org:443", "http://localhost:8000"):
        response = await call_http(app, headers={"Origin": origin})
        # The origin is reflected exactly as the browser sent it.
        assert response.header("access-control-allow-origin") == origin
    for origin in ("http://example.org", "https://example.org:8443", "http://localhost:8001"):
        response = await call_http(app, headers={"Origin": origin})
        assert response.header("access-control-allow-origin") is None


async def test_regex_sees_the_normalised_origin() -> None:
    app = cors(allow_origin_regex=r"https://[a-z]+\.example\.org")
    response = await call_http(app, headers={"Origin": "https://API.example.org:443"})
    assert response.header("access-control-allow-origin") == "https://API.example.org:443"


async def test_malformed_origin_is_never_reflected() -> None:
    app = cors(allow_origins=["*"], allow_credentials=True)
    for origin in (b"not an origin", b"https://a.com/x", b"\xff\xfe", b""):
        response = await call_http(app, headers=[(b"origin", origin)])
        assert response.status == 200
        assert response.header("access-control-allow-origin") is None
        assert response.header("access-control-allow-credentials") is None
        assert vary(response) == {"Origin"}


async def test_credentials_never_with_star() -> None:
    app = cors(allow_origins=["*"], allow_credentials=True, allow_headers=["*"])
    response = await call_http(app, headers={"Origin": "https://a.example"})
    assert response.header("access-control-allow-origin") == "https://a.example"
    headers = {
        "Origin": "https://a.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, x-a",
    }
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.header("access-control-allow-origin") == "https://a.example"
    assert listed(response, "access-control-allow-headers") == {"authorization", "x-a"}


async def test_decision_cache_is_bounded() -> None:
    app = cors(allow_origin_regex=r"https://.*")
    for i in range(1500):
        await call_http(app, headers={"Origin": f"https://h{i}.example"})
    assert len(app._grants) <= 1024
    response = await call_http(app, headers={"Origin": "https://h3.example"})
    assert response.header("access-control-allow-origin") == "https://h3.example"


# --------------------------------------------------------------------------- allow_origin_func


async def test_origin_func_sync_and_async() -> None:
    seen: list[str] = []

    def sync_func(origin: str) -> bool:
        seen.append(origin)
        return origin.endswith(".tenant.test")

    async def async_func(origin: str) -> bool:
        seen.append(origin)
        return origin.endswith(".tenant.test")

    for func in (sync_func, async_func):
        seen.clear()
        app = cors(allow_origins=["https://static.test"], allow_origin_func=func)
        response = await call_http(app, headers={"Origin": "https://a.tenant.test"})
        assert response.header("access-control-allow-origin") == "https://a.tenant.test"
        response = await call_http(
            app, "OPTIONS", headers={"Origin": "https://a.tenant.test", **PREFLIGHT_METHOD}
        )
        assert response.status == 200
        response = await call_http(app, headers={"Origin": "https://evil.test"})
        assert response.header("access-control-allow-origin") is None
        # Answers are not cached (a tenant may be revoked), and the list wins first.
        await call_http(app, headers={"Origin": "https://static.test"})
        assert seen == ["https://a.tenant.test", "https://a.tenant.test", "https://evil.test"]


PREFLIGHT_METHOD = {"Access-Control-Request-Method": "GET"}


async def test_origin_func_is_not_asked_about_null_or_garbage() -> None:
    seen: list[str] = []

    def func(origin: str) -> bool:
        seen.append(origin)
        return True

    app = cors(allow_origin_func=func)
    for origin in ("null", "https://a.com/path", "garbage"):
        response = await call_http(app, headers={"Origin": origin})
        assert response.header("access-control-allow-origin") is None
    assert seen == []


async def test_origin_func_errors_deny_and_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    def func(origin: str) -> bool:
        raise RuntimeError("database down")

    app = cors(allow_origin_func=func)
    with caplog.at_level(logging.ERROR, logger="asgi_kit.cors"):
        response = await call_http(app, headers={"Origin": "https://a.test"})
    assert response.status == 200
    assert response.header("access-control-allow-origin") is None
    assert "allow_origin_func raised" in caplog.text


# --------------------------------------------------------------------------- response headers


async def test_app_headers_in_any_case_are_not_duplicated() -> None:
    app_headers = [
        (b"Vary", b"Accept-Encoding"),
        (b"Access-Control-Allow-Origin", b"https://stale.example"),
        (b"Access-Control-Expose-Headers", b"X-Old"),
    ]
    app = CORSMiddleware(
        make_app(app_headers),
        allow_origins=["https://example.org"],
        allow_credentials=True,
        expose_headers=["X-New"],
    )
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert_no_duplicates(response)
    assert response.header("access-control-allow-origin") == "https://example.org"
    assert response.header("access-control-expose-headers") == "X-New"
    assert vary(response) == {"Accept-Encoding", "Origin"}


async def test_vary_star_is_kept() -> None:
    app = CORSMiddleware(make_app([(b"vary", b"*")]), allow_origins=["https://example.org"])
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header_all("vary") == ["*"]


async def test_headers_given_as_tuple() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": ((b"x-a", b"1"),)})
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(
        CORSMiddleware(app, allow_origins=["https://example.org"]),
        headers={"Origin": "https://example.org"},
    )
    assert response.header("x-a") == "1"
    assert response.header("access-control-allow-origin") == "https://example.org"


async def test_options_without_request_method_is_an_actual_request() -> None:
    calls: list[Scope] = []
    app = CORSMiddleware(make_app(calls=calls), allow_origins=["https://example.org"])
    response = await call_http(app, "OPTIONS", headers={"Origin": "https://example.org"})
    assert len(calls) == 1
    assert response.header("access-control-allow-origin") == "https://example.org"
    assert response.header("access-control-allow-methods") is None
    # And OPTIONS + Access-Control-Request-Method without Origin is not a preflight.
    await call_http(app, "OPTIONS", headers={"Access-Control-Request-Method": "GET"})
    assert len(calls) == 2


async def test_safelisted_headers_always_allowed_and_no_header_when_none_asked() -> None:
    app = cors(allow_origins=["https://example.org"])
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "content-type,accept"}
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.status == 200
    assert listed(response, "access-control-allow-headers") == {"content-type", "accept"}
    response = await call_http(app, "OPTIONS", headers=PREFLIGHT)
    assert response.header("access-control-allow-headers") is None
    headers["Access-Control-Request-Headers"] = " , ,"
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.status == 200
    assert response.header("access-control-allow-headers") is None


async def test_split_request_headers_are_joined() -> None:
    app = cors(allow_origins=["https://example.org"], allow_headers=["x-a", "x-b"])
    headers = [
        (b"origin", b"https://example.org"),
        (b"access-control-request-method", b"GET"),
        (b"access-control-request-headers", b"x-a"),
        (b"access-control-request-headers", b"x-b"),
    ]
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.status == 200
    assert listed(response, "access-control-allow-headers") == {"x-a", "x-b"}


@pytest.mark.parametrize(
    "requested",
    [
        ", ".join(f"x-h{i}" for i in range(100)),  # too many names
        ", ".join(f"x-h{i}" for i in range(65)),  # one more than the limit
        "x-" + "a" * 9000,  # too long
        "x-a, bad header",  # not a token
        "x-a\x00",
    ],
)
async def test_hostile_request_headers_are_refused(requested: str) -> None:
    app = cors(allow_origins=["*"], allow_headers=["*"])
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": requested}
    response = await call_http(app, "OPTIONS", headers=headers)
    assert response.status == 400
    assert response.text == "Disallowed CORS headers"


async def test_sixty_four_request_headers_are_fine() -> None:
    app = cors(allow_origins=["*"], allow_headers=["*"])
    names = [f"x-h{i}" for i in range(64)]
    response = await preflight(app, "https://a.test", "GET", ",".join(names))
    assert response.status == 200
    assert listed(response, "access-control-allow-headers") == set(names)


async def test_unhandled_error_gets_a_500_with_cors_headers() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    app = CORSMiddleware(broken, allow_origins=["https://example.org"], allow_credentials=True)
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope = http_scope(headers={"Origin": "https://example.org"})
    with pytest.raises(RuntimeError, match="boom"):
        await app(scope, receive, send)
    assert messages[0]["status"] == 500
    headers = dict(messages[0]["headers"])
    assert headers[b"access-control-allow-origin"] == b"https://example.org"
    assert headers[b"access-control-allow-credentials"] == b"true"
    assert headers[b"vary"] == b"Origin"

    # Disallowed origin: nothing is sent, the error propagates unchanged.
    messages.clear()
    scope = http_scope(headers={"Origin": "https://evil.example"})
    with pytest.raises(RuntimeError):
        await app(scope, receive, send)
    assert messages == []


async def test_error_after_response_started_sends_nothing_more() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("late")

    app = CORSMiddleware(broken, allow_origins=["https://example.org"])
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    with pytest.raises(RuntimeError):
        await app(http_scope(headers={"Origin": "https://example.org"}), receive, send)
    assert [m["type"] for m in messages] == ["http.response.start"]


async def test_streaming_body_passes_unbuffered() -> None:
    order: list[str] = []
    app = CORSMiddleware(streaming_app, allow_origins=["*"])
    response = await call_http(
        app,
        headers={"Origin": "https://example.org"},
        on_send=lambda m: order.append(m["type"]),
    )
    assert response.chunks == [b"0", b"1", b"2", b""]
    assert order[0] == "http.response.start"


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"allow_origins": ["https://example.com/"]}, ValueError, "allow_origins.*trailing"),
        ({"allow_origins": ["https://example.com/api"]}, ValueError, "allow_origins"),
        ({"allow_origins": ["https://*.example.com"]}, ValueError, "allow_origin_regex"),
        ({"allow_origins": ["example.com"]}, ValueError, "allow_origins"),
        ({"allow_origins": ["https://bücher.example"]}, ValueError, "allow_origins.*punycode"),
        ({"allow_origins": [None]}, TypeError, "allow_origins"),
        ({"allow_origins": b"https://a.com"}, TypeError, "allow_origins"),
        ({"allow_origin_regex": "https://(.*"}, ValueError, "allow_origin_regex"),
        ({"allow_origin_regex": 3}, TypeError, "allow_origin_regex"),
        ({"allow_methods": ["GET POST"]}, ValueError, "allow_methods"),
        ({"allow_headers": ["X Bad"]}, ValueError, "allow_headers"),
        ({"expose_headers": ["X:Bad"]}, ValueError, "expose_headers"),
        ({"max_age": -1}, ValueError, "max_age"),
        ({"max_age": True}, TypeError, "max_age"),
        ({"max_age": "600"}, TypeError, "max_age"),
        ({"allow_credentials": "yes"}, TypeError, "allow_credentials"),
        ({"allow_private_network": 1}, TypeError, "allow_private_network"),
        ({"check_websocket_origin": None}, TypeError, "check_websocket_origin"),
        ({"allow_origin_func": "yes"}, TypeError, "allow_origin_func"),
    ],
)
def test_invalid_options(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        cors(**options)


async def test_single_string_options_count_as_one_item() -> None:
    # Starlette would do a substring test on a plain string; here it is one entry.
    app = cors(allow_origins="https://example.org", allow_methods="*", allow_headers="*")
    assert app.allow_methods == ALL_METHODS
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header("access-control-allow-origin") == "https://example.org"
    response = await call_http(app, headers={"Origin": "https://example"})
    assert response.header("access-control-allow-origin") is None


def test_positional_order_matches_starlette() -> None:
    app = CORSMiddleware(
        make_app(), ["https://a.test"], ["GET", "PUT"], ["X-A"], True, r"https://b\.test", True,
        ["X-E"], 60,
    )  # fmt: skip
    assert app.allow_origins == ("https://a.test",)
    assert app.allow_methods == ("GET", "PUT")
    assert app.allow_origin_regex is not None
    assert app.allow_origin_regex.pattern == r"https://b\.test"
    assert app.allow_credentials is True
    assert app.allow_private_network is True
    assert app.expose_headers == ("X-E",)
    assert app.max_age == 60


# --------------------------------------------------------------------------- other scopes


async def test_lifespan_and_unknown_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = CORSMiddleware(app, allow_origins=["*"])

    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    await middleware({"type": "custom", "headers": [(b"origin", b"x")]}, receive, send)
    assert seen == ["lifespan", "custom"]


async def test_asgi2_app_is_adapted() -> None:
    class Legacy:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"legacy"})

    app = CORSMiddleware(Legacy, allow_origins=["https://example.org"])
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.body == b"legacy"
    assert response.header("access-control-allow-origin") == "https://example.org"


async def test_fastapi_add_middleware_drop_in() -> None:
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/items")
    async def items() -> dict[str, int]:
        return {"n": 1}

    api.add_middleware(
        CORSMiddleware,
        allow_origins=["https://example.org"],
        allow_methods=["*"],
        allow_headers=["*"],
        allow_credentials=True,
    )
    async with asgi_client(api) as client:
        response = await client.options(
            "/items",
            headers={
                "Origin": "https://example.org",
                "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://example.org"
        assert response.headers["access-control-allow-headers"] == "Authorization"
        response = await client.get("/items", headers={"Origin": "https://example.org"})
        assert response.json() == {"n": 1}
        assert response.headers["access-control-allow-credentials"] == "true"


# --------------------------------------------------------------------------- WebSocket


async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})


async def handshake(app: Any, headers: dict[str, str], **kwargs: Any) -> list[Message]:
    out: list[Message] = []
    async with websocket(app, headers=headers, **kwargs) as ws:
        await ws.send_input({"type": "websocket.connect"})
        out.append(await ws.receive_output(timeout=2))
        if out[0]["type"] == "websocket.http.response.start":
            out.append(await ws.receive_output(timeout=2))
    return out


async def test_websocket_disallowed_origin_is_closed_1008() -> None:
    app = CORSMiddleware(ws_app, allow_origins=["https://example.org"])
    out = await handshake(app, {"Origin": "https://evil.example", "Host": "api.test"})
    assert out == [{"type": "websocket.close", "code": 1008}]


async def test_websocket_disallowed_origin_gets_403_with_extension() -> None:
    app = CORSMiddleware(ws_app, allow_origins=["https://example.org"])
    out = await handshake(
        app, {"Origin": "https://evil.example", "Host": "api.test"}, http_response_extension=True
    )
    assert out[0]["type"] == "websocket.http.response.start"
    assert out[0]["status"] == 403
    assert out[1]["body"] == b"Disallowed CORS origin"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://example.org", "Host": "api.test"},  # allowed
        {"Host": "api.test"},  # no Origin: not a browser
        {"Origin": "http://api.test:8000", "Host": "api.test:8000"},  # same host
        {"Origin": "https://API.test", "Host": "api.test:443"},  # same host, default port
        {"Origin": "http://[::1]:8000", "Host": "[::1]:8000"},  # IPv6 literal
        {"Origin": "http://[::1]", "Host": "[::1]:80"},  # IPv6, default port
    ],
)
async def test_websocket_allowed_handshakes_pass(headers: dict[str, str]) -> None:
    app = CORSMiddleware(ws_app, allow_origins=["https://example.org"])
    assert await handshake(app, headers) == [{"type": "websocket.accept"}]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://api.test:8001", "Host": "api.test:8000"},  # another port
        {"Origin": "http://[::1]:8000", "Host": "[::2]:8000"},
        {"Origin": "https://api.test", "Host": "api.test:80"},  # https's port is 443
    ],
)
async def test_websocket_other_hosts_are_refused(headers: dict[str, str]) -> None:
    app = CORSMiddleware(ws_app, allow_origins=["https://example.org"])
    assert await handshake(app, headers) == [{"type": "websocket.close", "code": 1008}]


async def test_exclude_paths_leave_requests_alone() -> None:
    calls: list[Scope] = []
    app = CORSMiddleware(
        make_app(calls), allow_origins=["https://example.org"], exclude_paths=["/own-cors/*"]
    )
    response = await preflight(app, "https://evil.example")
    assert response.status == 400  # not excluded: answered here
    response = await call_http(
        app,
        "OPTIONS",
        "/own-cors/x",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status == 200 and response.body == b"Homepage"  # reached the app
    assert response.header("access-control-allow-origin") is None
    assert response.header("vary") is None
    ws = CORSMiddleware(ws_app, allow_origins=["https://example.org"], exclude_paths=["/ws"])
    headers = {"Origin": "https://evil.example", "Host": "api.test"}
    assert await handshake(ws, headers) == [{"type": "websocket.accept"}]
    assert app.exclude_paths == ("/own-cors/*",)


async def test_app_headers_of_our_names_are_replaced_once() -> None:
    app = CORSMiddleware(
        make_app(headers=[(b"Access-Control-Allow-Origin", b"*"), (b"Vary", b"Cookie")]),
        allow_origins=["https://example.org"],
        allow_credentials=True,
    )
    response = await call_http(app, headers={"Origin": "https://example.org"})
    assert response.header_all("access-control-allow-origin") == ["https://example.org"]
    assert vary(response) == {"Cookie", "Origin"}


async def test_websocket_check_can_be_disabled_and_uses_func() -> None:
    headers = {"Origin": "https://evil.example", "Host": "api.test"}
    app = CORSMiddleware(ws_app, check_websocket_origin=False)
    assert await handshake(app, headers) == [{"type": "websocket.accept"}]
    app = CORSMiddleware(ws_app, allow_origin_func=lambda o: o == "https://evil.example")
    assert await handshake(app, headers) == [{"type": "websocket.accept"}]
    headers = {"Origin": "null", "Host": "api.test"}
    assert (await handshake(CORSMiddleware(ws_app, allow_origins=["*"]), headers))[0][
        "type"
    ] == "websocket.close"


# --------------------------------------------------------------------------- vs Starlette


DIFFERENTIAL_CONFIGS: list[dict[str, Any]] = [
    {"allow_origins": ["*"]},
    {"allow_origins": ["*"], "allow_credentials": True, "allow_methods": ["*"]},
    {"allow_origins": ["https://a.test"], "allow_headers": ["X-A"]},
    {"allow_origin_regex": r"https://.*\.b\.test", "allow_credentials": True},
    {"allow_origins": ["*"], "allow_headers": ["*"], "allow_private_network": True},
]
DIFFERENTIAL_REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("GET", {"Origin": "https://a.test"}),
    ("GET", {"Origin": "https://x.b.test"}),
    ("POST", {"Origin": "https://other.test"}),
    ("OPTIONS", {"Origin": "https://a.test", "Access-Control-Request-Method": "GET"}),
    ("OPTIONS", {"Origin": "https://x.b.test", "Access-Control-Request-Method": "DELETE"}),
    (
        "OPTIONS",
        {
            "Origin": "https://a.test",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-a, content-type",
        },
    ),
    (
        "OPTIONS",
        {
            "Origin": "https://a.test",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true",
        },
    ),
]


@pytest.mark.parametrize("config", DIFFERENTIAL_CONFIGS)
async def test_same_decisions_as_starlette(config: dict[str, Any]) -> None:
    """For well-formed origins, a migrating user sees the same statuses and origins."""
    ours = cors(**config)
    theirs = StarletteCORS(make_app(), **config)
    for method, headers in DIFFERENTIAL_REQUESTS:
        a = await call_http(ours, method, headers=headers)
        b = await call_http(theirs, method, headers=headers)
        assert a.status == b.status, (method, headers)
        assert a.text == b.text, (method, headers)
        if a.status == 200:
            for name in ("access-control-allow-origin", "access-control-allow-methods"):
                assert a.header(name) == b.header(name), (name, method, headers)
        if a.header("access-control-allow-origin") is not None:
            assert a.header("access-control-allow-credentials") == b.header(
                "access-control-allow-credentials"
            )


# --------------------------------------------------------------------------- examples


async def test_examples_run() -> None:
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "examples"
    modules = {}
    for name in ("cors_raw", "cors_fastapi"):
        spec = importlib.util.spec_from_file_location(f"_example_{name}", root / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[name] = module

    response = await call_http(modules["cors_raw"].app, headers={"Origin": "http://localhost:5173"})
    assert response.header("access-control-allow-origin") == "http://localhost:5173"
    assert response.header("access-control-expose-headers") == "X-Request-Cost"

    async with asgi_client(modules["cors_fastapi"].app) as client:
        for origin, allowed in [
            ("https://shop.customer-one.com", True),
            ("https://pr-12.preview.example.com", True),
            ("https://evil.example", False),
        ]:
            response = await client.get("/items", headers={"Origin": origin})
            assert response.headers.get("access-control-allow-origin") == (
                origin if allowed else None
            )
