"""What the middleware sent, as Django's response (asgi_kit.contrib.django._response)."""

from __future__ import annotations

import pytest

from tests._support.django import (
    KINDS,
    _reset,  # noqa: F401 (autouse: configures Django)
    fetch,
)


async def test_cookie_set_by_outer_django_code_wins_over_raw_line() -> None:
    from asgi_kit.contrib.django._response import RawSetCookie

    raw = RawSetCookie("mw", "one", "mw=one; Path=/; Partitioned")
    assert raw.OutputString() == "mw=one; Path=/; Partitioned"
    from django.http import HttpResponse

    response = HttpResponse()
    dict.__setitem__(response.cookies, "mw", raw)
    response.set_cookie("mw", "changed", path="/x")
    assert response.cookies["mw"].OutputString() == "mw=changed; Path=/x"


@pytest.mark.parametrize("kind", KINDS)
async def test_cookies_of_view_and_middleware_all_arrive(kind: str) -> None:
    result = await fetch(kind, "GET", "/json")
    cookies = result.response.cookies
    assert cookies["view_cookie"].value == "v1"
    assert cookies["mw"].value == "one"
    assert cookies["mw2"].value == "two"
    lines = result.cookie_lines()
    assert "mw=one; Path=/; HttpOnly; SameSite=Lax" in lines
    # Attributes the stdlib does not know (Partitioned) survive byte for byte.
    assert "mw2=two; Path=/sub; Partitioned; Secure" in lines
    assert any(line.startswith("view_cookie=v1;") and "HttpOnly" in line for line in lines)
    assert len(lines) == 3
