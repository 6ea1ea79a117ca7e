"""The ASGI scope a Django request becomes (asgi_kit.contrib.django._scope)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests._support.django import _reset  # noqa: F401 (autouse: configures Django)

header_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    headers=st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True), header_text, max_size=6
    ),
    remote_port=st.one_of(st.none(), header_text, st.integers(-5, 70000)),
    server_port=st.one_of(header_text, st.integers(0, 70000)),
    query=header_text,
)
def test_scope_from_any_wsgi_request_never_fails(
    headers: dict[str, str], remote_port: Any, server_port: Any, query: str
) -> None:
    from django.test import RequestFactory

    from asgi_kit.contrib.django._scope import build_scope

    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    request = RequestFactory().get("/p", QUERY_STRING=query, SERVER_PORT=server_port, **extra)
    if remote_port is None:
        request.META.pop("REMOTE_PORT", None)
    else:
        request.META["REMOTE_PORT"] = remote_port
    scope = build_scope(request)
    assert scope["type"] == "http"
    assert scope["method"] == "GET"
    for name, value in scope["headers"]:
        assert isinstance(name, bytes) and name == name.lower()
        assert isinstance(value, bytes)
    host, port = scope["client"]
    assert isinstance(host, str) and isinstance(port, int)
    assert isinstance(scope["server"][1], int)
    assert isinstance(scope["query_string"], bytes)
