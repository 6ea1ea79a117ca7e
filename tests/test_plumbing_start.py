"""asgi_kit._plumbing.start: copy-on-write rewrites of the response start."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._plumbing.start import MutableHeaders, StartRewrite, merge_vary, rewrite_start

APP_HEADERS = (
    (b"Content-Type", b"text/plain"),
    (b"X-Request-ID", b"app-id"),
    (b"Access-Control-Allow-Origin", b"*"),
    (b"Vary", b"Accept-Encoding"),
    (b"content-length", b"5"),
)


def app_start() -> tuple[dict[str, Any], list[tuple[bytes, bytes]]]:
    headers = list(APP_HEADERS)
    return {"type": "http.response.start", "status": 200, "headers": headers}, headers


def test_every_edit_in_one_new_list_and_the_app_objects_untouched() -> None:
    rewrite = StartRewrite(
        replace=(b"access-control-allow-origin",),
        remove=(b"content-length",),
        keep=(b"x-request-id", b"x-frame-options"),
        vary=(b"Origin",),
    )
    message, headers = app_start()
    before = dict(message)
    out = rewrite.apply(
        message,
        values=[(b"access-control-allow-origin", b"https://a.example")],
        add=[(b"set-cookie", b"s=1")],
        defaults=[(b"x-request-id", b"ours"), (b"x-frame-options", b"DENY")],
    )
    assert message == before and headers == list(APP_HEADERS)
    assert out is not message and out["headers"] is not headers
    assert out["status"] == 200
    assert out["headers"] == [
        (b"Content-Type", b"text/plain"),
        (b"X-Request-ID", b"app-id"),  # the app's own value wins for keep= names
        (b"vary", b"Accept-Encoding, Origin"),
        (b"access-control-allow-origin", b"https://a.example"),
        (b"set-cookie", b"s=1"),
        (b"x-frame-options", b"DENY"),
    ]


def test_nothing_to_change_returns_the_apps_message() -> None:
    message, _ = app_start()
    assert StartRewrite(remove=(b"x-absent",)).apply(message) is message
    assert StartRewrite(vary=(b"accept-encoding",)).apply(message) is message


def test_vary_folded_and_star_absorbs() -> None:
    folded = rewrite_start(
        {"headers": [(b"vary", b"a"), (b"X", b"1"), (b"VARY", b"b, a")]}, vary=(b"Origin",)
    )
    assert folded["headers"] == [(b"vary", b"a, b, a, Origin"), (b"X", b"1")]
    star = rewrite_start({"headers": [(b"Vary", b"*")]}, vary=(b"Origin",))
    assert star["headers"] == [(b"Vary", b"*")]
    fresh = rewrite_start({"headers": []}, vary=(b"Origin", b"Cookie"))
    assert fresh["headers"] == [(b"vary", b"Origin, Cookie")]


def test_missing_headers_key_and_tuple_headers() -> None:
    assert rewrite_start({"status": 204}, add=[(b"x", b"1")])["headers"] == [(b"x", b"1")]
    out = rewrite_start({"headers": ((b"X", b"1"), (b"y", b"2"))}, replace=[(b"x", b"new")])
    assert out["headers"] == [(b"y", b"2"), (b"x", b"new")]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"replace": (b"X-Upper",)},
        {"remove": ("str",)},
        {"keep": (b"vary",)},
        {"remove": (b"vary",)},
    ],
)
def test_bad_declarations(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        StartRewrite(**kwargs)


def test_merge_vary() -> None:
    assert merge_vary(b"origin", (b"Origin",)) is None
    assert merge_vary(b" a ,, b", (b"c",)) == b"a ,, b, c"  # appended, not re-serialised
    assert merge_vary(b"X-Origin-Id", (b"origin",)) == b"X-Origin-Id, origin"  # substring only
    assert merge_vary(b"a, ORIGIN", (b"Origin", b"Cookie")) == b"a, ORIGIN, Cookie"
    assert merge_vary(b"*", (b"c",)) is None
    assert merge_vary(b" , ", (b"c",)) == b"c"


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",")} - {b""}


@given(
    st.lists(st.sampled_from([b"a", b"A", b"origin", b"x-origin", b"*", b" ", b""]), max_size=5),
    st.lists(st.sampled_from([b"Origin", b"a", b"Cookie"]), min_size=1, max_size=2, unique=True),
)
def test_merge_vary_is_a_set_union(current: list[bytes], tokens: list[bytes]) -> None:
    value = b",".join(current)
    merged = merge_vary(value, tokens)
    wanted = _tokens(value) | {t.lower() for t in tokens}
    if b"*" in _tokens(value) or wanted == _tokens(value):
        assert merged is None
    else:
        assert merged is not None and _tokens(merged) == wanted


names = st.sampled_from([b"vary", b"Vary", b"x-a", b"X-A", b"set-cookie", b"content-length"])


@given(st.lists(st.tuples(names, st.sampled_from([b"1", b"a, b", b"*", b""])), max_size=8))
def test_rewrite_agrees_with_mutable_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """One-pass StartRewrite gives what the step-by-step MutableHeaders edits give."""
    message = {"type": "http.response.start", "status": 200, "headers": list(headers)}
    out = StartRewrite(replace=(b"x-a",), remove=(b"content-length",), vary=(b"Origin",)).apply(
        message, values=[(b"x-a", b"new")]
    )
    assert message["headers"] == headers
    _, expected = MutableHeaders.copy_of(message)
    expected.remove(b"content-length")
    expected.set(b"x-a", b"new")
    expected.add_vary(b"Origin")
    assert _normal(out["headers"]) == _normal(expected.raw)


def _normal(headers: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], set[bytes]]:
    """Non-Vary headers in order, and the set of Vary tokens (folding is allowed)."""
    others = [(k.lower(), v) for k, v in headers if k.lower() != b"vary"]
    tokens = {t.strip().lower() for k, v in headers if k.lower() == b"vary" for t in v.split(b",")}
    return others, tokens - {b""}
