"""CSRFMiddleware: Fetch Metadata first, Origin as fallback, the way Go 1.25 decides."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from asgi_kit import CSRFMiddleware, ProxyHeadersMiddleware
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http, websocket, websocket_scope

HOST = "app.example.com"


class Events:
    """A structlog-style logger that keeps events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


def guard(**options: Any) -> tuple[CSRFMiddleware, CollectorRegistry, Events]:
    registry = CollectorRegistry()
    events = Events()
    return CSRFMiddleware(ok, registry=registry, logger=events, **options), registry, events


async def status(app: Any, method: str = "POST", scheme: str = "https", **headers: str) -> int:
    sent = {"host": HOST, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return (await call_http(app, method, headers=sent, scheme=scheme)).status


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_safe_methods_pass_even_cross_site(method: str) -> None:
    app, _, events = guard()
    assert await status(app, method, sec_fetch_site="cross-site", origin="https://evil") == 200
    assert events.events == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"sec_fetch_site": "same-origin"}, 200),
        ({"sec_fetch_site": "none"}, 200),
        ({"sec_fetch_site": "same-site", "origin": "https://www.example.com"}, 403),
        ({"sec_fetch_site": "cross-site", "origin": "https://evil.example"}, 403),
        # Sec-Fetch-Site decides even when Origin looks same-origin.
        ({"sec_fetch_site": "cross-site", "origin": f"https://{HOST}"}, 403),
        ({"sec_fetch_site": "Same-Origin"}, 403),
        ({"sec_fetch_site": "same-origin, cross-site"}, 403),
        # No Sec-Fetch-Site: Origin against the request's own origin.
        ({"origin": f"https://{HOST}"}, 200),
        ({"origin": "HTTPS://APP.example.com:443"}, 200),
        ({"origin": f"http://{HOST}"}, 403),
        ({"origin": f"https://{HOST}:8443"}, 403),
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "null"}, 403),
        ({"origin": "garbage"}, 403),
        # Neither header: not a browser.
        ({}, 200),
    ],
)
async def test_decisions(headers: dict[str, str], expected: int) -> None:
    app, _, _ = guard()
    assert await status(app, **headers) == expected


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post", "get", "PROPFIND"])
async def test_every_other_method_is_checked_in_any_case(method: str) -> None:
    # RFC 9110 methods are case-sensitive: "post" is not GET/HEAD/OPTIONS, and
    # Django routes it to the POST view, so it must not slip through.
    app, registry, _ = guard()
    assert await status(app, method, sec_fetch_site="cross-site") == 403
    label = method if method in {"POST", "PUT", "PATCH", "DELETE"} else "_OTHER"
    value = registry.get_sample_value(
        "http_server_csrf_refusals_total", {"reason": "cross-site", "method": label}
    )
    assert value == 1.0


async def test_trusted_origins_exact_and_wildcard() -> None:
    app, _, _ = guard(trusted_origins=["https://admin.example.com", "https://*.partner.example"])
    assert await status(app, sec_fetch_site="same-site", origin="https://admin.example.com") == 200
    assert (
        await status(app, sec_fetch_site="cross-site", origin="https://a.b.partner.example") == 200
    )
    assert await status(app, origin="https://ADMIN.example.com:443") == 200
    # The wildcard is for subdomains: not the bare domain, not another scheme or port.
    assert await status(app, sec_fetch_site="cross-site", origin="https://partner.example") == 403
    assert await status(app, sec_fetch_site="cross-site", origin="http://x.partner.example") == 403
    assert (
        await status(app, sec_fetch_site="cross-site", origin="https://x.partner.example:444")
        == 403
    )
    assert (
        await status(app, sec_fetch_site="cross-site", origin="https://evilpartner.example") == 403
    )
    assert await status(app, sec_fetch_site="cross-site") == 403  # trusted needs an Origin


async def test_exclude_paths_for_webhooks() -> None:
    app, _, _ = guard(exclude_paths=["/webhooks/*"])
    response = await call_http(
        app, "POST", "/webhooks/stripe", headers={"sec-fetch-site": "cross-site"}
    )
    assert response.status == 200
    assert (
        await call_http(app, "POST", "/other", headers={"sec-fetch-site": "cross-site"})
    ).status == 403


async def test_custom_safe_methods() -> None:
    app, _, _ = guard(safe_methods=["get", "HEAD", "OPTIONS", "QUERY"])
    assert await status(app, "GET", sec_fetch_site="cross-site") == 200
    assert await status(app, "QUERY", sec_fetch_site="cross-site") == 200
    assert await status(app, "query", sec_fetch_site="cross-site") == 403


async def test_refusal_body_says_why_and_follows_accept() -> None:
    app, _, events = guard()
    headers = {"host": HOST, "sec-fetch-site": "cross-site", "origin": "https://evil.example"}
    text = await call_http(app, "POST", "/transfer", headers=headers)
    assert text.status == 403
    assert text.header("content-type") == "text/plain; charset=utf-8"
    assert b"another site" in text.body
    as_json = await call_http(
        app, "POST", "/transfer", headers={**headers, "accept": "application/json"}
    )
    assert as_json.header("content-type") == "application/json"
    assert json.loads(as_json.body)["reason"] == "cross-site"
    assert len(events.events) == 2
    event = events.events[0]
    assert event["event"] == "csrf_refused"
    assert event["reason"] == "cross-site"
    assert event["method"] == "POST" and event["path"] == "/transfer"
    assert event["origin"] == "https://evil.example"
    assert event["sec_fetch_site"] == "cross-site"


async def test_origin_compared_after_proxy_headers() -> None:
    registry = CollectorRegistry()
    app = ProxyHeadersMiddleware(CSRFMiddleware(ok, registry=registry), trusted_hosts=["127.0.0.1"])
    headers = {"host": HOST, "origin": f"https://{HOST}", "x-forwarded-proto": "https"}
    # The server saw http (TLS ended at the proxy); the browser's origin is https.
    assert (await call_http(app, "POST", headers=headers, scheme="http")).status == 200
    plain = CSRFMiddleware(ok, registry=registry)
    assert (await call_http(plain, "POST", headers=headers, scheme="http")).status == 403


async def test_ipv6_and_port_own_origin() -> None:
    app, _, _ = guard()
    response = await call_http(
        app, "POST", headers={"host": "[::1]:8000", "origin": "http://[::1]:8000"}
    )
    assert response.status == 200
    response = await call_http(
        app, "POST", headers={"host": "[::1]:8000", "origin": "http://[::1]:9000"}
    )
    assert response.status == 403
    # A malformed Host cannot prove the origin matches.
    response = await call_http(app, "POST", headers={"host": "a b", "origin": "http://a b"})
    assert response.status == 403


@pytest.mark.parametrize("extension", [False, True])
async def test_websocket_handshake_cross_site_refused(extension: bool) -> None:
    app, _, events = guard()
    scope = websocket_scope(
        headers={"host": HOST, "origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        http_response_extension=extension,
    )
    async with websocket(app, scope) as ws:
        await ws.send_input({"type": "websocket.connect"})
        answer = await ws.receive_output()
    if extension:
        assert answer["type"] == "websocket.http.response.start" and answer["status"] == 403
    else:
        assert answer == {"type": "websocket.close", "code": 1008}
    assert events.events[0]["websocket"] is True


async def test_websocket_same_origin_accepted() -> None:
    app, _, _ = guard()
    scope = websocket_scope(headers={"host": HOST, "origin": f"https://{HOST}"})
    scope["scheme"] = "wss"
    async with websocket(app, scope) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert await ws.receive_output() == {"type": "websocket.accept"}


async def test_lifespan_passes() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await CSRFMiddleware(inner, registry=None)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


def test_counter_registered_once_per_registry() -> None:
    registry = CollectorRegistry()
    CSRFMiddleware(ok, registry=registry)
    CSRFMiddleware(ok, registry=registry)  # no "Duplicated timeseries" error


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"trusted_origins": "https://a.example"}, TypeError, "trusted_origins"),
        ({"trusted_origins": ["https://a.example/"]}, ValueError, "trailing"),
        ({"trusted_origins": ["*.example.com"]}, ValueError, "https://\\*.example.com"),
        ({"trusted_origins": ["https://a.*.example"]}, ValueError, "first label"),
        ({"trusted_origins": ["null"]}, ValueError, "trusted_origins"),
        ({"trusted_origins": [3]}, TypeError, "trusted_origins"),
        ({"safe_methods": ["G T"]}, ValueError, "safe_methods"),
        ({"exclude_paths": ["nope"]}, ValueError, "exclude_paths"),
        ({"registry": "default"}, TypeError, "registry"),
        ({"logger": object()}, TypeError, "logger"),
    ],
)
def test_invalid_options(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        CSRFMiddleware(ok, **{"registry": None, **options})


def test_non_callable_app_refused() -> None:
    with pytest.raises(TypeError, match="app"):
        CSRFMiddleware(None)  # type: ignore[arg-type]
