"""Hostile input for the guard middleware (Hypothesis): never a 500, never a bypass."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from asgi_kit import CSRFMiddleware, SecurityHeadersMiddleware, TrustedHostMiddleware
from asgi_kit.cors import normalize_origin
from asgi_kit.security._host import parse_host
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Raw header bytes as a hostile client (or a lax server) could deliver them:
# any octet, CR, LF and NUL included, plus pieces of real values.
hostile_bytes = st.one_of(
    st.binary(max_size=80),
    st.lists(
        st.sampled_from(
            [b"example.com", b"www.", b"[", b"]", b"::1", b":", b"8080", b".", b"*", b"@",
             b"\r\n", b"\x00", b" ", b"%", b"/", b"https://", b"null", b"evil", b"same-origin",
             b"cross-site", b"same-site", b"none", b",", b"\xff"]
        ),
        max_size=8,
    ).map(b"".join),
)  # fmt: skip


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


HOSTS = TrustedHostMiddleware(
    ok, allowed_hosts=["example.com", "*.example.com", "[::1]:8000", "www.site.example"]
)


def allowed(host: str, port: int | None) -> bool:
    if host.startswith("[") and host == "[::1]":
        return port == 8000
    return host in ("example.com", "www.site.example") or host.endswith(".example.com")


@SETTINGS
@given(hosts=st.lists(hostile_bytes, min_size=0, max_size=2))
async def test_trusted_host_never_fails_or_lets_a_bad_host_through(hosts: list[bytes]) -> None:
    response = await call_http(HOSTS, headers=[(b"host", h) for h in hosts])
    assert response.status in (200, 307, 400)
    if response.status == 200:
        # Only a single Host that parses and matches a pattern gets through.
        assert len(hosts) == 1
        parsed = parse_host(hosts[0].decode("latin-1").strip(" \t"))
        assert parsed is not None and allowed(*parsed)
    if response.status == 307:
        location = response.header("location")
        assert location is not None and location.startswith("http://www.site.example")
        assert all(0x21 <= c < 0x7F for c in location.encode("latin-1"))


@SETTINGS
@given(host=st.text(max_size=40))
def test_parse_host_output_is_clean(host: str) -> None:
    parsed = parse_host(host)
    if parsed is not None:
        name, port = parsed
        assert name and name == name.lower() and name.isascii()
        assert not any(c in name for c in " \t\r\n\x00/@?#")
        assert port is None or 0 <= port <= 65535


CSRF = CSRFMiddleware(
    ok, trusted_origins=["https://trusted.example", "https://*.partner.example"],
    registry=CollectorRegistry(),
)  # fmt: skip
OWN = "https://example.com"


def trusted(origin: bytes | None) -> bool:
    if origin is None:
        return False
    text = normalize_origin(origin.decode("latin-1"))
    if text is None:
        return False
    return text == "https://trusted.example" or (
        text.startswith("https://") and text.endswith(".partner.example") and ":" not in text[8:]
    )


@SETTINGS
@given(
    method=st.sampled_from(["POST", "PUT", "DELETE", "PATCH", "post", "GET", "get", "X"]),
    site=st.one_of(st.none(), hostile_bytes),
    origin=st.one_of(st.none(), hostile_bytes, st.just(OWN.encode())),
    host=st.one_of(st.just(b"example.com"), hostile_bytes),
)
async def test_csrf_never_fails_or_passes_a_cross_site_request(
    method: str, site: bytes | None, origin: bytes | None, host: bytes
) -> None:
    headers = [(b"host", host)]
    if site is not None:
        headers.append((b"sec-fetch-site", site))
    if origin is not None:
        headers.append((b"origin", origin))
    response = await call_http(CSRF, method, headers=headers, scheme="https")
    assert response.status in (200, 403)
    if method in ("GET", "HEAD", "OPTIONS"):
        assert response.status == 200
        return
    passed = response.status == 200
    if site is not None:
        assert passed == (site in (b"same-origin", b"none") or trusted(origin))
    elif origin is None:
        assert passed
    elif passed:
        own = parse_host(host.decode("latin-1").strip(" \t"))
        same = own is not None and normalize_origin(origin.decode("latin-1")) == (
            "https://" + own[0] + ("" if own[1] in (None, 443) else f":{own[1]}")
        )
        assert same or trusted(origin)


@SETTINGS
@given(
    names=st.lists(
        st.sampled_from(
            [b"X-Frame-Options", b"content-security-policy", b"REFERRER-POLICY", b"x-custom",
             b"Content-Type", b"strict-transport-security", b"set-cookie"]
        ),
        max_size=6,
    ),
    value=hostile_bytes,
)  # fmt: skip
async def test_headers_keep_the_apps_and_add_each_of_ours_once(
    names: list[bytes], value: bytes
) -> None:
    app_headers = [(name, value) for name in names]
    frozen = list(app_headers)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": app_headers})
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(SecurityHeadersMiddleware(app), scheme="https")
    assert app_headers == frozen
    assert response.headers[: len(frozen)] == frozen
    counts: dict[bytes, int] = {}
    for key, _ in response.headers:
        counts[key.lower()] = counts.get(key.lower(), 0) + 1
    for ours in (b"x-frame-options", b"x-content-type-options", b"strict-transport-security",
                 b"referrer-policy", b"content-security-policy"):  # fmt: skip
        app_count = sum(1 for n in names if n.lower() == ours)
        assert counts.get(ours, 0) == max(app_count, 1)


@SETTINGS
@given(
    text=st.tuples(
        st.text(max_size=12), st.sampled_from("\r\n\x00\x7f\x0b\x1b"), st.text(max_size=12)
    ).map("".join),
    option=st.sampled_from(["content_security_policy", "permissions_policy", "referrer_policy"]),
)
def test_control_characters_in_options_are_refused(text: str, option: str) -> None:
    value: Any = {
        "content_security_policy": f"default-src 'self'{text}",
        "permissions_policy": f"camera=(){text}",
        "referrer_policy": f"no-referrer{text}",
    }[option]
    with pytest.raises(ValueError):
        SecurityHeadersMiddleware(ok, **{option: value})


@SETTINGS
@given(directive=st.text(min_size=1, max_size=20), source=st.text(max_size=20))
def test_any_csp_either_validates_or_raises_value_or_type_error(
    directive: str, source: str
) -> None:
    try:
        middleware = SecurityHeadersMiddleware(ok, content_security_policy={directive: source})
    except (ValueError, TypeError):
        return
    pairs = dict(middleware._default.plain)  # what it would send
    value = pairs[b"content-security-policy"]
    assert all(0x20 <= c < 0x7F for c in value)
    assert b"," not in value
    # One directive given, plus frame-ancestors: nothing smuggled in with ";".
    assert value.count(b";") == 1
