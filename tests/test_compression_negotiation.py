"""Accept-Encoding negotiation (RFC 9110 §12.5.3), including hostile values."""

from __future__ import annotations

import gzip

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit import CompressionMiddleware
from asgi_kit._codings import negotiate
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http

PREF = ("br", "zstd", "gzip")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, deflate, br", "br"),
        ("gzip, zstd", "zstd"),
        ("gzip", "gzip"),
        ("GZip", "gzip"),
        ("x-gzip", "gzip"),
        ("x-gzip;q=0, gzip", "gzip"),
        ("br;q=0.9, gzip", "gzip"),
        ("br;q=1.0, gzip;q=1", "br"),
        ("br;q=0, gzip;q=0", None),
        ("br;q=0, gzip;q=0, *", "zstd"),
        ("*", "br"),
        ("*;q=0", None),
        ("*;q=0.5, gzip", "gzip"),
        ("*;q=0.5, gzip;q=0.4", "br"),
        ("br;q=0, *;q=0.1", "zstd"),
        ("identity", None),
        ("identity;q=0", None),
        ("gzip;q=0.5, identity", None),
        ("gzip, identity;q=0.5", "gzip"),
        ("", None),
        ("   ", None),
        (",,,", None),
        ("deflate, compress", None),
        ("gzip;q=", None),
        ("gzip;q=1.5", None),
        ("gzip;q=-1", None),
        ("gzip;q=0.5000", None),
        ("gzip;level=1", "gzip"),
        ("gzip ; q=0.5 , br ; q=0.25", "gzip"),
        ("gzip;q=0, gzip", None),  # the first entry for a name counts
        ("br\x00, gzip", "gzip"),
        ("\u00e9, br", "br"),
    ],
)
def test_negotiate(header: str, expected: str | None) -> None:
    assert negotiate(header, PREF) == expected


def test_server_preference_order() -> None:
    assert negotiate("gzip, br", ("gzip", "br")) == "gzip"
    assert negotiate("gzip, br", ("br", "gzip")) == "br"
    assert negotiate("deflate", ("br", "gzip")) is None
    assert negotiate(b"br;q=0.1, gzip;q=0.2", PREF) == "gzip"


ITEM = st.one_of(
    st.sampled_from(["br", "gzip", "zstd", "x-gzip", "identity", "*", "deflate", "BR", " Gzip "]),
    st.text(max_size=12),
)
PARAM = st.one_of(
    st.just(""),
    st.builds(lambda q: f";q={q}", st.sampled_from(["0", "1", "0.5", "0.001", "1.000", "2", "x"])),
    st.text(max_size=8).map(lambda t: ";" + t),
)
HEADER = st.lists(st.tuples(ITEM, PARAM), max_size=8).map(
    lambda items: ",".join(i + p for i, p in items)
)


@settings(max_examples=300, deadline=None)
@given(header=st.one_of(HEADER, st.text(max_size=80), st.binary(max_size=80)))
def test_negotiate_never_raises_and_respects_refusals(header: str | bytes) -> None:
    chosen = negotiate(header, PREF)
    assert chosen is None or chosen in PREF
    if chosen is None:
        return
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    first_q: dict[str, str] = {}
    for item in text.split(","):
        token, _, params = item.partition(";")
        name = token.strip().lower()
        if name and name not in first_q and params.strip().lower().replace(" ", "") == "q=0":
            first_q[name] = "0"
        first_q.setdefault(name, "")
    # An explicit first-entry refusal is never overridden (x-gzip stands in
    # for gzip only when gzip itself is not listed).
    key = "x-gzip" if chosen == "gzip" and "gzip" not in first_q else chosen
    assert first_q.get(key) != "0"


@settings(max_examples=150, deadline=None)
@given(header=st.one_of(HEADER, st.binary(max_size=60)))
async def test_middleware_never_fails_on_hostile_accept_encoding(header: str | bytes) -> None:
    body = b"hello compressible world " * 40

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    raw = header.encode("latin-1", "replace") if isinstance(header, str) else header
    response = await call_http(CompressionMiddleware(app), headers=[(b"accept-encoding", raw)])
    assert response.status == 200
    coding = response.header("content-encoding")
    if coding == "br":
        assert brotli.decompress(response.body) == body
    elif coding == "gzip":
        assert gzip.decompress(response.body) == body
    elif coding == "zstd":
        assert zstandard.ZstdDecompressor().decompressobj().decompress(response.body) == body
    else:
        assert coding is None
        assert response.body == body
    assert response.header("vary") == "Accept-Encoding"


async def test_hostile_accept_encoding_values_do_not_pin_memory() -> None:
    # Negotiation results are remembered per distinct Accept-Encoding value;
    # huge made-up values must not stay in that memory.
    import tracemalloc

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 1000})

    mw = CompressionMiddleware(app)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(250):  # under the cache's size: nothing evicted
            accept = b"gzip;q=0.%d, " % (i % 10) + b"x-%d, " % i * 2000
            response = await call_http(mw, headers=[(b"accept-encoding", accept)])
            assert response.status == 200
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 1024 * 1024, retained
