"""The three guard middleware as Django MIDDLEWARE adapters, under WSGI and ASGI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import AsyncClient, Client, override_settings
from prometheus_client import CollectorRegistry

import asgi_kit.contrib.django as dj
from tests.apps.django_project import configure

KINDS = ("wsgi", "asgi")
MIDDLEWARE = [
    "asgi_kit.contrib.django.TrustedHostMiddleware",
    "asgi_kit.contrib.django.SecurityHeadersMiddleware",
    "asgi_kit.contrib.django.CSRFMiddleware",
]
SETTINGS = {
    "TrustedHostMiddleware": {"allowed_hosts": ["testserver", "*.example.com"]},
    "SecurityHeadersMiddleware": {"content_security_policy": {"default-src": "'self'"}},
    "CSRFMiddleware": {"trusted_origins": ["https://admin.example.com"]},
}


@pytest.fixture(autouse=True)
def _configure() -> None:
    configure()


async def fetch(kind: str, method: str, path: str, **headers: str) -> Any:
    if kind == "wsgi":
        # Django's WSGI test client puts the host in SERVER_NAME only; real
        # servers (and its ASGI client) send the request's Host header.
        headers.setdefault("host", "testserver")
    options = {**SETTINGS, "CSRFMiddleware": {**SETTINGS["CSRFMiddleware"],
                                              "registry": CollectorRegistry()}}  # fmt: skip
    with override_settings(MIDDLEWARE=MIDDLEWARE, ASGI_KIT=options):
        if kind == "wsgi":
            return await asyncio.to_thread(
                lambda: Client(raise_request_exception=False).generic(method, path, headers=headers)
            )
        client = AsyncClient(raise_request_exception=False)
        return await client.generic(method, path, headers=headers)


def test_adapters_declared_like_the_others() -> None:
    for name in ("SecurityHeadersMiddleware", "CSRFMiddleware", "TrustedHostMiddleware"):
        cls = getattr(dj, name)
        assert issubclass(cls, dj.DjangoASGIMiddleware)
        assert cls.asgi_middleware == f"asgi_kit.security.{name}"
        assert cls.settings_key == name
        assert name in dj.__all__


@pytest.mark.parametrize("kind", KINDS)
async def test_headers_on_django_responses(kind: str) -> None:
    response = await fetch(kind, "GET", "/json")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("kind", KINDS)
async def test_cross_site_post_refused_same_origin_passes(kind: str) -> None:
    refused = await fetch(kind, "POST", "/echo", sec_fetch_site="cross-site")
    assert refused.status_code == 403
    # The 403 is answered inside SecurityHeadersMiddleware, so it has the headers too.
    assert refused["X-Frame-Options"] == "DENY"
    passed = await fetch(kind, "POST", "/echo", sec_fetch_site="same-origin")
    assert passed.status_code == 200
    trusted = await fetch(
        kind, "POST", "/echo", sec_fetch_site="same-site", origin="https://admin.example.com"
    )
    assert trusted.status_code == 200


async def test_unknown_host_refused() -> None:
    # WSGI only: Django's ASGI test client always sends "host: testserver" itself
    # (a second Host is refused too); tests/test_security_e2e.py covers ASGI servers.
    assert (await fetch("wsgi", "GET", "/json", host="evil.org")).status_code == 400
    assert (await fetch("wsgi", "GET", "/json", host="api.example.com")).status_code == 200


@pytest.mark.parametrize("kind", KINDS)
async def test_csp_nonce_reaches_the_view(kind: str) -> None:
    options = {"SecurityHeadersMiddleware": {"csp_nonce": True}}
    headers = {"host": "testserver"} if kind == "wsgi" else {}
    with override_settings(
        MIDDLEWARE=["asgi_kit.contrib.django.SecurityHeadersMiddleware"], ASGI_KIT=options
    ):
        if kind == "wsgi":
            response = await asyncio.to_thread(lambda: Client().get("/json", headers=headers))
        else:
            response = await AsyncClient().get("/json")
    nonce = response.json()["state"]["csp_nonce"]
    assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]
