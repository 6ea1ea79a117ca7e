"""SecurityHeadersMiddleware: OWASP defaults, validation, CSP nonces, app-owned headers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_kit import SecurityHeadersMiddleware
from asgi_kit.security import HSTS_MAX_AGE, OWASP_PERMISSIONS_POLICY
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import asgi_client, call_http, websocket

# A real app reuses one module-level start message and header list, in mixed case.
APP_HEADERS = [(b"Content-Type", b"text/plain"), (b"X-Frame-Options", b"SAMEORIGIN")]
APP_START = {"type": "http.response.start", "status": 200, "headers": APP_HEADERS}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send(APP_START)
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b"hello"})


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def nonce_app(seen: list[str]) -> Any:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["state"]["csp_nonce"])
        await bare(scope, receive, send)

    return inner


async def test_owasp_defaults_on_http() -> None:
    response = await call_http(SecurityHeadersMiddleware(bare))
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("x-frame-options") == "DENY"
    assert response.header("content-security-policy") == "frame-ancestors 'none'"
    assert response.header("referrer-policy") == "strict-origin-when-cross-origin"
    assert response.header("cross-origin-opener-policy") == "same-origin"
    assert response.header("x-permitted-cross-domain-policies") == "none"
    # HSTS over plain http is ignored by browsers and would mislead: never sent.
    assert response.header("strict-transport-security") is None
    assert response.header("permissions-policy") is None
    assert response.header("cross-origin-embedder-policy") is None


async def test_hsts_only_on_https() -> None:
    response = await call_http(SecurityHeadersMiddleware(bare), scheme="https")
    assert response.header("strict-transport-security") == (
        f"max-age={HSTS_MAX_AGE}; includeSubDomains"
    )
    assert HSTS_MAX_AGE == 365 * 24 * 3600


@pytest.mark.parametrize(
    ("hsts", "expected"),
    [
        (False, None),
        (600, "max-age=600; includeSubDomains"),
        ({"max_age": 0}, "max-age=0; includeSubDomains"),
        ({"include_subdomains": False}, f"max-age={HSTS_MAX_AGE}"),
        ({"max_age": 63072000, "preload": True}, "max-age=63072000; includeSubDomains; preload"),
    ],
)
async def test_hsts_options(hsts: Any, expected: str | None) -> None:
    response = await call_http(SecurityHeadersMiddleware(bare, hsts=hsts), scheme="https")
    assert response.header("strict-transport-security") == expected


async def test_app_headers_kept_and_app_message_untouched() -> None:
    before = list(APP_HEADERS)
    middleware = SecurityHeadersMiddleware(app)
    for _ in range(2):
        response = await call_http(middleware)
        # The app's own X-Frame-Options (any case) wins; no duplicate.
        assert [v for k, v in response.headers if k.lower() == b"x-frame-options"] == [
            b"SAMEORIGIN"
        ]
        assert response.header("x-content-type-options") == "nosniff"
        assert response.body == b"hello"
    assert before == APP_HEADERS
    assert APP_START["headers"] is APP_HEADERS


async def test_websocket_and_lifespan_untouched() -> None:
    calls: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})

    middleware = SecurityHeadersMiddleware(inner, csp_nonce=True)
    async with websocket(middleware) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert await ws.receive_output() == {"type": "websocket.accept"}
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert calls == ["websocket", "lifespan"]


async def test_csp_dict_and_string_serialise_the_same() -> None:
    as_dict = SecurityHeadersMiddleware(
        bare,
        content_security_policy={
            "default_src": "'self'",
            "img-src": ["'self'", "data:", "https://cdn.example.com"],
            "upgrade-insecure-requests": True,
        },
    )
    as_text = SecurityHeadersMiddleware(
        bare,
        content_security_policy=(
            "default-src 'self'; img-src 'self' data: https://cdn.example.com; "
            "upgrade-insecure-requests"
        ),
    )
    first = (await call_http(as_dict)).header("content-security-policy")
    assert first == (await call_http(as_text)).header("content-security-policy")
    assert first == (
        "default-src 'self'; img-src 'self' data: https://cdn.example.com; "
        "upgrade-insecure-requests; frame-ancestors 'none'"
    )


async def test_frame_ancestors_from_frame_options_unless_policy_names_it() -> None:
    same = SecurityHeadersMiddleware(bare, frame_options="sameorigin")
    response = await call_http(same)
    assert response.header("x-frame-options") == "SAMEORIGIN"
    assert response.header("content-security-policy") == "frame-ancestors 'self'"
    own = SecurityHeadersMiddleware(
        bare, content_security_policy="default-src 'self'; frame-ancestors https://a.example"
    )
    assert (await call_http(own)).header("content-security-policy") == (
        "default-src 'self'; frame-ancestors https://a.example"
    )
    off = SecurityHeadersMiddleware(bare, frame_options=None)
    response = await call_http(off)
    assert response.header("x-frame-options") is None
    assert response.header("content-security-policy") is None


async def test_report_only_keeps_the_framing_rule_enforced() -> None:
    middleware = SecurityHeadersMiddleware(
        bare,
        content_security_policy={"default-src": "'self'", "report-to": "csp"},
        csp_report_only=True,
        reporting_endpoints={"csp": "https://reports.example.com/csp"},
    )
    response = await call_http(middleware)
    assert response.header("content-security-policy-report-only") == (
        "default-src 'self'; report-to csp"
    )
    assert response.header("content-security-policy") == "frame-ancestors 'none'"
    assert response.header("reporting-endpoints") == 'csp="https://reports.example.com/csp"'


async def test_nonce_fresh_per_request_in_state_and_policy() -> None:
    seen: list[str] = []
    middleware = SecurityHeadersMiddleware(
        nonce_app(seen),
        content_security_policy={"default-src": ["'self'", "https://cdn.example.com"]},
        csp_nonce=True,
    )
    policies = [(await call_http(middleware)).header("content-security-policy") for _ in range(3)]
    assert len(set(seen)) == 3
    for nonce, policy in zip(seen, policies, strict=True):
        # 16 random bytes, base64url: a valid CSP nonce of 128 bits.
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", nonce)
        assert policy == (
            "default-src 'self' https://cdn.example.com; frame-ancestors 'none'; "
            f"script-src 'self' https://cdn.example.com 'nonce-{nonce}'; "
            f"style-src 'self' https://cdn.example.com 'nonce-{nonce}'"
        )


async def test_nonce_added_to_existing_directives_and_elem_variants() -> None:
    seen: list[str] = []
    middleware = SecurityHeadersMiddleware(
        nonce_app(seen),
        content_security_policy=(
            "default-src 'none'; script-src 'strict-dynamic'; script-src-elem 'none'"
        ),
        csp_nonce=True,
        frame_options=None,
    )
    policy = (await call_http(middleware)).header("content-security-policy")
    n = seen[0]
    # style-src is created from default-src: 'none' is dropped when a nonce joins it.
    assert policy == (
        f"default-src 'none'; script-src 'strict-dynamic' 'nonce-{n}'; "
        f"script-src-elem 'nonce-{n}'; style-src 'nonce-{n}'"
    )


async def test_nonce_without_policy_and_in_starlette_request_state() -> None:
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.csp_nonce)

    starlette = Starlette(routes=[Route("/", page)])
    starlette.add_middleware(SecurityHeadersMiddleware, csp_nonce=True)
    async with asgi_client(starlette) as client:
        response = await client.get("/")
    nonce = response.text
    assert response.headers["content-security-policy"] == (
        f"frame-ancestors 'none'; script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'"
    )


async def test_permissions_policy_dict_string_and_owasp() -> None:
    middleware = SecurityHeadersMiddleware(
        bare,
        permissions_policy={"camera": (), "geolocation": ["self", "https://maps.example"],
                            "fullscreen": "*"},
    )  # fmt: skip
    assert (await call_http(middleware)).header("permissions-policy") == (
        'camera=(), geolocation=(self "https://maps.example"), fullscreen=*'
    )
    text = SecurityHeadersMiddleware(bare, permissions_policy="new-feature=(), camera=(self)")
    assert (await call_http(text)).header("permissions-policy") == "new-feature=(), camera=(self)"
    owasp = SecurityHeadersMiddleware(bare, permissions_policy=OWASP_PERMISSIONS_POLICY)
    value = (await call_http(owasp)).header("permissions-policy")
    assert value is not None and "camera=()" in value and "sync-xhr=(self)" in value


async def test_optional_cross_origin_headers() -> None:
    middleware = SecurityHeadersMiddleware(
        bare,
        cross_origin_embedder_policy="require-corp",
        cross_origin_resource_policy="same-site",
        cross_origin_opener_policy=None,
        referrer_policy="no-referrer, strict-origin-when-cross-origin",
        permitted_cross_domain_policies=None,
        content_type_options=False,
    )
    response = await call_http(middleware)
    assert response.header("cross-origin-embedder-policy") == "require-corp"
    assert response.header("cross-origin-resource-policy") == "same-site"
    assert response.header("cross-origin-opener-policy") is None
    assert response.header("referrer-policy") == "no-referrer, strict-origin-when-cross-origin"
    assert response.header("x-permitted-cross-domain-policies") is None
    assert response.header("x-content-type-options") is None


async def test_exclude_paths_and_overrides() -> None:
    middleware = SecurityHeadersMiddleware(
        bare,
        exclude_paths=["/raw/*"],
        overrides={
            "/embed/*": {"frame_options": "SAMEORIGIN"},
            "/docs": {"content_security_policy": "default-src 'self' https://cdn.example"},
        },
    )
    assert (await call_http(middleware, path="/raw/x")).header("x-frame-options") is None
    embed = await call_http(middleware, path="/embed/video")
    assert embed.header("x-frame-options") == "SAMEORIGIN"
    docs = await call_http(middleware, path="/docs")
    assert docs.header("content-security-policy") == (
        "default-src 'self' https://cdn.example; frame-ancestors 'none'"
    )
    other = await call_http(middleware, path="/other")
    assert other.header("x-frame-options") == "DENY"


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"content_security_policy": "default-src self"}, ValueError, "write \"'self'\""),
        ({"content_security_policy": {"script-src": "none"}}, ValueError, "'none'"),
        ({"content_security_policy": "defualt-src 'self'"}, ValueError, "default-src"),
        ({"content_security_policy": {"img-src": "'selfish'"}}, ValueError, "keyword"),
        ({"content_security_policy": "default-src 'self'; default-src *"}, ValueError, "twice"),
        ({"content_security_policy": "default-src 'self', img-src *"}, ValueError, "policies"),
        ({"content_security_policy": "default-src 'self'\r\nX-Evil: 1"}, ValueError, "control"),
        ({"content_security_policy": {"upgrade-insecure-requests": "yes"}}, ValueError, "no val"),
        # A ";" in a dict value would smuggle a directive in.
        (
            {"content_security_policy": {"img-src": "https://a.example/x;script-src"}},
            ValueError,
            "source expression",
        ),
        ({"content_security_policy": {"img-src": "https://a.example/x,b"}}, ValueError, "source"),
        ({"content_security_policy": {"default-src": "'none' 'self'"}}, ValueError, "only"),
        ({"content_security_policy": 5}, TypeError, "content_security_policy"),
        ({"content_security_policy": ""}, ValueError, "no directives"),
        ({"hsts": "yes"}, TypeError, "hsts"),
        ({"hsts": -1}, ValueError, "max_age"),
        ({"hsts": {"max_age": 600, "preload": True}}, ValueError, "preload"),
        ({"hsts": {"maxage": 1}}, ValueError, "unknown key"),
        ({"frame_options": "ALLOW-FROM https://a"}, ValueError, "frame_options"),
        ({"referrer_policy": "never"}, ValueError, "referrer_policy"),
        ({"cross_origin_opener_policy": "same"}, ValueError, "cross_origin_opener_policy"),
        ({"permissions_policy": {"camra": ()}}, ValueError, "camera"),
        ({"permissions_policy": {"camera": ["'self'"]}}, ValueError, "without quotes"),
        ({"permissions_policy": "camera=(self"}, ValueError, "permissions_policy"),
        ({"permissions_policy": 3}, TypeError, "permissions_policy"),
        ({"csp_nonce": "yes"}, TypeError, "csp_nonce"),
        ({"reporting_endpoints": {"csp": "http://evil.example/x"}}, ValueError, "https"),
        ({"exclude_paths": "/x"}, TypeError, "exclude_paths"),
        ({"overrides": {"/x": {"nope": 1}}}, ValueError, "unknown option"),
        ({"overrides": {"/x": {"frame_options": "X"}}}, ValueError, r"overrides\['/x'\]"),
    ],
)
def test_invalid_options(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SecurityHeadersMiddleware(bare, **options)


def test_non_callable_app_refused() -> None:
    with pytest.raises(TypeError, match="app"):
        SecurityHeadersMiddleware("not an app")  # type: ignore[arg-type]
