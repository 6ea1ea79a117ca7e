"""CompressionMiddleware: response compression rules, in-process."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import threading
import zlib
from collections.abc import Sequence
from typing import Any

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit import CompressionMiddleware
from asgi_kit import _codings as codings
from asgi_kit.compression import DEFAULT_EXCLUDE_CONTENT_TYPES, OPT_OUT_HEADER
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import asgi_client, call_http, http_scope
from ._support.compression import gzip_backend  # noqa: F401

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(200))


def _gzip(data: bytes, level: int) -> bytes:
    """A one-shot gzip member (zlib.compress has no ``wbits`` before Python 3.11)."""
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


BR = {"accept-encoding": "br"}
GZ = {"accept-encoding": "gzip"}


def make_app(
    body: bytes | Sequence[bytes] = TEXT,
    *,
    content_type: bytes | None = b"text/plain; charset=utf-8",
    status: int = 200,
    headers: Sequence[tuple[bytes, bytes]] = (),
    content_length: bool = True,
    **start_extra: Any,
) -> Any:
    chunks = [body] if isinstance(body, bytes) else list(body)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raw = list(headers)
        if content_type is not None:
            raw.append((b"content-type", content_type))
        if content_length:
            raw.append((b"content-length", str(sum(map(len, chunks))).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw, **start_extra})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


def decode(encoding: str | None, data: bytes) -> bytes:
    if encoding == "br":
        return bytes(brotli.decompress(data))
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    assert encoding is None
    return data


# --------------------------------------------------------------------------- one shot


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("br", "br"), ("gzip", "gzip"), ("gzip, br", "br"), ("br;q=0.5, gzip", "gzip")],
)
async def test_single_message_compressed_in_one_shot(accept: str, expected: str) -> None:
    mw = CompressionMiddleware(make_app())
    response = await call_http(mw, headers={"accept-encoding": accept})
    assert response.status == 200
    assert response.header("content-encoding") == expected
    assert len(response.chunks) == 1
    assert int(response.header("content-length") or -1) == len(response.body)
    assert len(response.body) < len(TEXT)
    assert decode(expected, response.body) == TEXT
    assert response.header("vary") == "Accept-Encoding"
    assert len(response.header_all("content-length")) == 1


async def test_zstd_when_enabled() -> None:
    mw = CompressionMiddleware(make_app(), encodings=("br", "zstd", "gzip"))
    response = await call_http(mw, headers={"accept-encoding": "gzip, zstd"})
    assert response.header("content-encoding") == "zstd"
    assert decode("zstd", response.body) == TEXT
    # br wins among equals.
    response = await call_http(mw, headers={"accept-encoding": "gzip, zstd, br"})
    assert response.header("content-encoding") == "br"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip, deflate, br, zstd", "zstd"),
        ("br, gzip", "br"),
        ("gzip", "gzip"),
        ("zstd;q=0.5, br", "br"),
        ("*", "zstd"),
    ],
)
async def test_encodings_none_is_every_coding_cheapest_first(accept: str, expected: str) -> None:
    # encodings=None: every installed coding is offered, cheapest first
    # among equal q-values: zstd, br, gzip.
    mw = CompressionMiddleware(make_app(), encodings=None)
    assert mw.encodings == ("zstd", "br", "gzip")
    response = await call_http(mw, headers={"accept-encoding": accept})
    assert response.header("content-encoding") == expected
    assert decode(expected, response.body) == TEXT


async def test_explicit_encodings_order_is_the_preference() -> None:
    mw = CompressionMiddleware(make_app(), encodings=("gzip", "br"))
    response = await call_http(mw, headers={"accept-encoding": "br, gzip, zstd"})
    assert response.header("content-encoding") == "gzip"
    response = await call_http(mw, headers={"accept-encoding": "zstd"})
    assert response.header("content-encoding") is None
    assert response.body == TEXT
    assert response.header("vary") == "Accept-Encoding"


async def test_levels_are_used() -> None:
    body = json.dumps([{"k": i, "v": "x" * (i % 37)} for i in range(2000)]).encode()
    fast = CompressionMiddleware(make_app(body), gzip_level=1)
    best = CompressionMiddleware(make_app(body), compresslevel=9)
    assert best.gzip_level == 9
    one = (await call_http(fast, headers=GZ)).body
    nine = (await call_http(best, headers=GZ)).body
    module, levels = codings.DEFAULT_GZIP_BACKEND.module, codings.DEFAULT_GZIP_BACKEND.levels
    assert one == module.compress(body, levels[1], wbits=31)
    assert nine == module.compress(body, levels[9], wbits=31)
    assert gzip.decompress(one) == gzip.decompress(nine) == body
    br = CompressionMiddleware(make_app(body), brotli_quality=2)
    assert (await call_http(br, headers=BR)).body == brotli.compress(body, quality=2)


@pytest.mark.parametrize(
    "accept",
    ["br;q=0, gzip;q=0", "identity", "*;q=0", "", "deflate", "gzip;q=abc", "br;q=2", ",,;;"],
)
async def test_no_acceptable_coding_sends_identity_with_vary(accept: str) -> None:
    mw = CompressionMiddleware(make_app())
    response = await call_http(mw, headers={"accept-encoding": accept})
    assert response.header("content-encoding") is None
    assert response.body == TEXT
    assert response.header("content-length") == str(len(TEXT))
    assert response.header("vary") == "Accept-Encoding"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("*", "br"),
        ("GZIP", "gzip"),
        ("  Gzip ;  Q=0.8 , BR ; q=0.7", "gzip"),
        ("br;q=0, *", "gzip"),
        ("zstd", None),
        ("zstd;q=0, br;q=0, *", "gzip"),
        ("x-gzip", "gzip"),
        ("gzip;q=0.5, identity;q=0.9", None),
        ("gzip;q=0.5", "gzip"),
        ("br;q=0.001", "br"),
    ],
)
async def test_negotiation_cases(accept: str, expected: str | None) -> None:
    mw = CompressionMiddleware(make_app())
    response = await call_http(mw, headers={"accept-encoding": accept})
    assert response.header("content-encoding") == expected
    assert decode(expected, response.body) == TEXT


async def test_split_accept_encoding_headers_are_joined() -> None:
    mw = CompressionMiddleware(make_app())
    response = await call_http(
        mw, headers=[("accept-encoding", "gzip;q=0.5"), ("Accept-Encoding", "br;q=0.4")]
    )
    assert response.header("content-encoding") == "gzip"


async def test_no_accept_encoding_header() -> None:
    mw = CompressionMiddleware(make_app())
    response = await call_http(mw)
    assert response.header("content-encoding") is None
    assert response.body == TEXT
    assert response.header("vary") == "Accept-Encoding"


async def test_negotiation_cache_is_bounded() -> None:
    mw = CompressionMiddleware(make_app(b"small"))
    for i in range(700):
        await call_http(mw, headers={"accept-encoding": f"gzip;q=0.{i % 10}, x{i}"})
    assert 0 < len(mw._negotiated) <= 256


# --------------------------------------------------------------------------- skips


async def test_small_single_body_untouched() -> None:
    mw = CompressionMiddleware(make_app(b"x" * 499))
    response = await call_http(mw, headers=BR)
    assert response.body == b"x" * 499
    assert response.header("content-encoding") is None
    assert response.header("vary") is None


async def test_minimum_size_zero_compresses_small_bodies() -> None:
    mw = CompressionMiddleware(make_app(b"a" * 100), minimum_size=0)
    response = await call_http(mw, headers=BR)
    assert response.header("content-encoding") == "br"
    assert decode("br", response.body) == b"a" * 100


async def test_empty_body_untouched() -> None:
    mw = CompressionMiddleware(make_app(b""), minimum_size=0)
    response = await call_http(mw, headers=BR)
    assert response.body == b""
    assert response.header("content-encoding") is None


async def test_small_content_length_skips_a_stream() -> None:
    mw = CompressionMiddleware(make_app([b"a" * 100, b"b" * 100]))
    response = await call_http(mw, headers=BR)
    assert response.chunks == [b"a" * 100, b"b" * 100]
    assert response.header("content-encoding") is None


async def test_already_encoded_untouched() -> None:
    data = gzip.compress(TEXT)
    mw = CompressionMiddleware(make_app(data, headers=[(b"Content-Encoding", b"gzip")]))
    response = await call_http(mw, headers=BR)
    assert response.body == data
    assert response.header_all("content-encoding") == ["gzip"]
    assert response.header("vary") is None


@pytest.mark.parametrize(
    "content_type",
    [
        b"image/png",
        b"IMAGE/JPEG",
        b"video/mp4",
        b"audio/ogg; codecs=opus",
        b"application/zip",
        b"application/gzip",
        b"application/x-brotli",
        b"font/woff2",
        b"application/octet-stream",
        b"application/grpc+proto",
    ],
)
async def test_excluded_content_types_untouched(content_type: bytes) -> None:
    mw = CompressionMiddleware(make_app(content_type=content_type))
    response = await call_http(mw, headers=BR)
    assert response.body == TEXT
    assert response.header("content-encoding") is None
    assert response.header("vary") is None


@pytest.mark.parametrize(
    "content_type",
    [b"image/svg+xml", b"text/event-stream", b"application/json", b"text/html; charset=utf-8"],
)
async def test_compressible_content_types(content_type: bytes) -> None:
    mw = CompressionMiddleware(make_app(content_type=content_type))
    response = await call_http(mw, headers=BR)
    assert response.header("content-encoding") == "br"


async def test_missing_content_type_is_compressed() -> None:
    mw = CompressionMiddleware(make_app(content_type=None))
    response = await call_http(mw, headers=BR)
    assert response.header("content-encoding") == "br"


async def test_custom_exclude_content_types() -> None:
    mw = CompressionMiddleware(
        make_app(content_type=b"application/json"), exclude_content_types=["application/json"]
    )
    assert (await call_http(mw, headers=BR)).header("content-encoding") is None
    mw = CompressionMiddleware(make_app(content_type=b"image/png"), exclude_content_types=[])
    assert (await call_http(mw, headers=BR)).header("content-encoding") == "br"
    assert "image/*" in DEFAULT_EXCLUDE_CONTENT_TYPES


async def test_exclude_paths() -> None:
    mw = CompressionMiddleware(make_app(), exclude_paths=["/raw", "/files/*"])
    for path in ("/raw", "/files/a/b.txt"):
        response = await call_http(mw, path=path, headers=BR)
        assert response.header("content-encoding") is None
        assert response.header("vary") is None
    assert (await call_http(mw, path="/other", headers=BR)).header("content-encoding") == "br"


async def test_head_untouched() -> None:
    mw = CompressionMiddleware(make_app())
    response = await call_http(mw, method="HEAD", headers=BR)
    assert response.header("content-encoding") is None
    assert response.body == TEXT


@pytest.mark.parametrize("accept", [BR, {}])
async def test_head_gets_the_vary_a_get_gets(accept: dict[str, str]) -> None:
    # A HEAD response carries the header fields of the GET (RFC 9110 §9.3.2).
    mw = CompressionMiddleware(make_app(headers=[(b"vary", b"Cookie")]))
    head = await call_http(mw, method="HEAD", headers=accept)
    get = await call_http(mw, headers=accept)
    assert head.header("content-encoding") is None
    assert head.header_all("vary") == get.header_all("vary") == ["Cookie, Accept-Encoding"]
    small = CompressionMiddleware(make_app(b"abc"))
    assert (await call_http(small, method="HEAD", headers=BR)).header("vary") is None


@pytest.mark.parametrize("status", [204, 304, 206])
async def test_status_untouched(status: int) -> None:
    mw = CompressionMiddleware(make_app(status=status))
    response = await call_http(mw, headers=BR)
    assert response.status == status
    assert response.header("content-encoding") is None
    assert response.body == TEXT


async def test_range_request_untouched() -> None:
    mw = CompressionMiddleware(make_app())
    response = await call_http(mw, headers={"accept-encoding": "br", "range": "bytes=0-99"})
    assert response.header("content-encoding") is None
    assert response.body == TEXT


async def test_opt_out_header_is_stripped() -> None:
    app = make_app(headers=[(b"X-Asgi-Kit-Compression", b"OFF")])
    response = await call_http(CompressionMiddleware(app), headers=BR)
    assert response.header("content-encoding") is None
    assert response.header(OPT_OUT_HEADER) is None
    assert response.body == TEXT
    # Any other value is just removed.
    app = make_app(headers=[(OPT_OUT_HEADER.encode(), b"on")])
    response = await call_http(CompressionMiddleware(app), headers=BR)
    assert response.header("content-encoding") == "br"
    assert response.header(OPT_OUT_HEADER) is None


async def test_incompressible_body_sent_as_is() -> None:
    data = os.urandom(4096)
    mw = CompressionMiddleware(make_app(data, content_type=b"text/plain"))
    response = await call_http(mw, headers=GZ)
    assert response.body == data
    assert response.header("content-encoding") is None
    assert response.header("content-length") == "4096"
    assert response.header("vary") == "Accept-Encoding"


# --------------------------------------------------------------------------- headers


async def test_strong_etag_made_weak() -> None:
    mw = CompressionMiddleware(make_app(headers=[(b"etag", b'"abc"')]))
    assert (await call_http(mw, headers=BR)).header("etag") == 'W/"abc"'
    mw = CompressionMiddleware(make_app(headers=[(b"ETag", b'W/"abc"')]))
    assert (await call_http(mw, headers=BR)).header_all("etag") == ['W/"abc"']
    # Not compressed: the validator stays strong.
    mw = CompressionMiddleware(make_app(headers=[(b"etag", b'"abc"')]))
    assert (await call_http(mw)).header("etag") == '"abc"'


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        ([b"Origin"], ["Origin, Accept-Encoding"]),
        ([b"accept-encoding"], ["accept-encoding"]),
        ([b"Origin", b"Cookie"], ["Origin, Cookie, Accept-Encoding"]),
        ([b"*"], ["*"]),
    ],
)
async def test_vary_merged(vary: list[bytes], expected: list[str]) -> None:
    mw = CompressionMiddleware(make_app(headers=[(b"Vary", v) for v in vary]))
    response = await call_http(mw, headers=BR)
    assert response.header_all("vary") == expected


async def test_django_style_header_case() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"Content-Type", b"text/html; charset=utf-8"),
            (b"Content-Length", str(len(TEXT)).encode()),
            (b"Accept-Ranges", b"bytes"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": TEXT})

    response = await call_http(CompressionMiddleware(app), headers=BR)
    assert response.header("content-encoding") == "br"
    assert response.header_all("content-length") == [str(len(response.body))]
    assert response.header("accept-ranges") is None
    assert decode("br", response.body) == TEXT


async def test_prebuilt_header_list_not_mutated() -> None:
    shared = [(b"content-type", b"text/plain"), (b"vary", b"Origin")]
    start = {"type": "http.response.start", "status": 200, "headers": shared}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": TEXT})

    mw = CompressionMiddleware(app)
    for _ in range(3):
        response = await call_http(mw, headers=BR)
        assert response.header_all("vary") == ["Origin, Accept-Encoding"]
    assert shared == [(b"content-type", b"text/plain"), (b"vary", b"Origin")]
    assert start["headers"] is shared


# --------------------------------------------------------------------------- streaming


@pytest.mark.usefixtures("gzip_backend")
@pytest.mark.parametrize("encoding", ["br", "gzip", "zstd"])
async def test_each_chunk_flushed_before_next_is_produced(encoding: str) -> None:
    chunks = [b"event %d: " % i + b"payload " * 30 + b"\n" for i in range(5)]
    captured: list[Message] = []
    produced: list[bytes] = []
    if encoding == "br":
        decoder: Any = brotli.Decompressor()
        feed = decoder.process
    elif encoding == "gzip":
        decoder = zlib.decompressobj(31)
        feed = decoder.decompress
    else:
        decoder = zstandard.ZstdDecompressor().decompressobj()
        feed = decoder.decompress

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        seen = 0
        decoded = b""
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            produced.append(chunk)
            # What went out so far decodes to exactly what was produced so far,
            # before the next chunk exists.
            fresh = [m["body"] for m in captured[seen:] if m["type"] == "http.response.body"]
            seen = len(captured)
            decoded += bytes(feed(b"".join(fresh)))
            assert decoded == b"".join(produced)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    mw = CompressionMiddleware(app, encodings=("br", "zstd", "gzip"))
    response = await call_http(mw, headers={"accept-encoding": encoding}, on_send=captured.append)
    assert len(produced) == 5
    assert response.header("content-encoding") == encoding
    assert response.header("content-length") is None
    assert response.header("vary") == "Accept-Encoding"
    assert decode(encoding, response.body) == b"".join(chunks)
    assert response.messages[-1]["more_body"] is False


async def test_stream_removes_content_length_and_skips_empty_chunks() -> None:
    chunks = [TEXT[:3000], b"", TEXT[3000:], b""]
    mw = CompressionMiddleware(make_app(chunks))
    response = await call_http(mw, headers=GZ)
    assert response.header("content-length") is None
    assert response.header("content-encoding") == "gzip"
    assert decode("gzip", response.body) == TEXT
    bodies = [m for m in response.messages if m["type"] == "http.response.body"]
    assert all(m["body"] for m in bodies[:-1])
    assert bodies[-1]["more_body"] is False


async def test_stream_with_small_first_chunk_still_compressed() -> None:
    mw = CompressionMiddleware(make_app([b"{", TEXT, b"}"], content_length=False))
    response = await call_http(mw, headers=BR)
    assert response.header("content-encoding") == "br"
    assert decode("br", response.body) == b"{" + TEXT + b"}"


async def test_stream_to_identity_client_gets_vary() -> None:
    mw = CompressionMiddleware(make_app([TEXT, TEXT], content_length=False))
    response = await call_http(mw, headers={"accept-encoding": "identity"})
    assert response.chunks == [TEXT, TEXT]
    assert response.header("vary") == "Accept-Encoding"


async def test_large_chunks_compressed_in_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real_compress = codings._brotli_compress
    real_stream = codings._BrotliStream

    def spy_compress(data: bytes, quality: int) -> bytes:
        threads.append(threading.current_thread().name)
        return real_compress(data, quality)

    class SpyStream(real_stream):  # type: ignore[misc,valid-type]
        def chunk(self, data: bytes) -> bytes:
            threads.append(threading.current_thread().name)
            return bytes(super().chunk(data))

    monkeypatch.setattr(codings, "_brotli_compress", spy_compress)
    monkeypatch.setattr(codings, "_BrotliStream", SpyStream)
    mw = CompressionMiddleware(make_app(TEXT), thread_minimum_size=4096)
    assert decode("br", (await call_http(mw, headers=BR)).body) == TEXT
    mw = CompressionMiddleware(make_app([TEXT, b"tail" * 200]), thread_minimum_size=4096)
    assert decode("br", (await call_http(mw, headers=BR)).body) == TEXT + b"tail" * 200
    mw = CompressionMiddleware(make_app([b"small" * 200, b"x"]), thread_minimum_size=4096)
    await call_http(mw, headers=BR)
    main = threading.current_thread().name
    assert threads[0].startswith("asgi_kit-compress")
    assert threads[1].startswith("asgi_kit-compress")
    assert threads[2] == main


async def test_compressors_created_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[int] = []
    real = codings._BrotliStream

    def factory(level: int) -> Any:
        created.append(level)
        return real(level)

    monkeypatch.setattr(codings, "_BrotliStream", factory)
    mw = CompressionMiddleware(make_app([b"a" * 300, b"b" * 300], content_length=False))
    await call_http(mw)  # no Accept-Encoding
    await call_http(mw, headers={"accept-encoding": "identity"})
    await call_http(CompressionMiddleware(make_app(TEXT)), headers=BR)  # one shot
    assert created == []
    await call_http(mw, headers=BR)
    assert created == [4]


# --------------------------------------------------------------------------- other messages


async def test_pathsend_passes_through_with_original_start() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"5000")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.pathsend", "path": "/tmp/file.txt"})

    scope = http_scope(headers=BR, extensions={"http.response.pathsend": {}})
    response = await call_http(CompressionMiddleware(app), scope=scope)
    assert [m["type"] for m in response.messages] == [
        "http.response.start",
        "http.response.pathsend",
    ]
    assert response.headers == headers


async def test_zerocopysend_passes_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.zerocopysend", "file": 3, "count": 10})

    response = await call_http(CompressionMiddleware(app), headers=BR)
    assert [m["type"] for m in response.messages] == [
        "http.response.start",
        "http.response.zerocopysend",
    ]
    assert response.headers == []


async def test_trailers_forwarded_after_compressed_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": 200, "trailers": True}
        await send({**start, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": TEXT})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

    response = await call_http(CompressionMiddleware(app), headers=BR)
    assert [m["type"] for m in response.messages] == [
        "http.response.start",
        "http.response.body",
        "http.response.trailers",
    ]
    assert response.header("content-length") is None
    assert response.start["trailers"] is True
    assert decode("br", response.body) == TEXT


async def test_app_returning_without_body_still_sends_start() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    response = await call_http(CompressionMiddleware(app), headers=BR)
    assert response.status == 200
    assert [m["type"] for m in response.messages] == ["http.response.start"]


async def test_app_exception_propagates() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await call_http(CompressionMiddleware(app), headers=BR)


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
async def test_other_scopes_pass_through(scope_type: str) -> None:
    seen: list[tuple[Scope, Any, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        return None

    scope = {"type": scope_type, "headers": [(b"accept-encoding", b"br")]}
    await CompressionMiddleware(app)(scope, receive, send)
    assert seen == [(scope, receive, send)]


async def test_asgi2_app() -> None:
    class Legacy:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await make_app()(self.scope, receive, send)

    response = await call_http(CompressionMiddleware(Legacy), headers=BR)
    assert decode("br", response.body) == TEXT


async def test_fastapi_add_middleware_and_httpx_decoding() -> None:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse, StreamingResponse

    api = FastAPI()
    api.add_middleware(CompressionMiddleware, minimum_size=100, compresslevel=5)

    @api.get("/text", response_class=PlainTextResponse)
    async def text() -> str:
        return TEXT.decode()

    @api.get("/stream")
    async def stream() -> StreamingResponse:
        async def gen() -> Any:
            for i in range(3):
                yield TEXT[i * 1000 : (i + 1) * 1000]
                await asyncio.sleep(0)

        return StreamingResponse(gen(), media_type="text/plain")

    async with asgi_client(api) as client:
        for accept in ("br", "gzip"):
            response = await client.get("/text", headers={"accept-encoding": accept})
            assert response.headers["content-encoding"] == accept
            assert response.content == TEXT
        response = await client.get("/stream", headers={"accept-encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert "content-length" not in response.headers
        assert response.content == TEXT[:3000]


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("kwargs", "exc", "option"),
    [
        ({"minimum_size": -1}, ValueError, "minimum_size"),
        ({"minimum_size": "500"}, TypeError, "minimum_size"),
        ({"minimum_size": True}, TypeError, "minimum_size"),
        ({"brotli_quality": 12}, ValueError, "brotli_quality"),
        ({"brotli_quality": -1}, ValueError, "brotli_quality"),
        ({"gzip_level": 0}, ValueError, "gzip_level"),
        ({"gzip_level": 10}, ValueError, "gzip_level"),
        ({"compresslevel": 0}, ValueError, "compresslevel"),
        ({"gzip_level": 3, "compresslevel": 5}, ValueError, "compresslevel"),
        ({"zstd_level": 23}, ValueError, "zstd_level"),
        ({"encodings": ("br", "deflate")}, ValueError, "encodings"),
        ({"encodings": ("gzip", "gzip")}, ValueError, "encodings"),
        ({"encodings": ()}, ValueError, "encodings"),
        ({"encodings": "br"}, TypeError, "encodings"),
        ({"encodings": 9}, TypeError, "encodings"),
        ({"exclude_content_types": "image/*"}, TypeError, "exclude_content_types"),
        ({"exclude_content_types": ["image"]}, ValueError, "exclude_content_types"),
        ({"exclude_content_types": [3]}, TypeError, "exclude_content_types"),
        ({"exclude_paths": ["static"]}, ValueError, "exclude_paths"),
        ({"exclude_paths": "/static"}, TypeError, "exclude_paths"),
        ({"thread_minimum_size": -5}, ValueError, "thread_minimum_size"),
        ({"decompress_requests": "yes"}, TypeError, "decompress_requests"),
        ({"max_decompressed_size": 0}, ValueError, "max_decompressed_size"),
    ],
)
def test_invalid_options(kwargs: dict[str, Any], exc: type[Exception], option: str) -> None:
    with pytest.raises(exc, match=option):
        CompressionMiddleware(make_app(), **kwargs)


def test_compresslevel_alias_and_defaults() -> None:
    mw = CompressionMiddleware(make_app(), compresslevel=5)
    assert mw.gzip_level == 5
    assert CompressionMiddleware(make_app(), gzip_level=5, compresslevel=5).gzip_level == 5
    mw = CompressionMiddleware(make_app())
    assert mw.encodings == ("br", "gzip")  # DESIGN's default: zstd is opt-in
    assert (mw.minimum_size, mw.brotli_quality, mw.gzip_level) == (500, 4, 6)


def test_zstd_unavailable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codings, "_zstd_encoder", None)
    with pytest.raises(ValueError, match=r"encodings: zstd needs .*zstd"):
        CompressionMiddleware(make_app(), encodings=("zstd", "gzip"))


async def test_opt_out_header_stripped_on_untouched_paths() -> None:
    app = make_app(headers=[(OPT_OUT_HEADER.encode(), b"off")])
    mw = CompressionMiddleware(app, exclude_paths=["/raw"])
    for kwargs in (
        {"method": "HEAD", "headers": BR},
        {"path": "/raw", "headers": BR},
        {"headers": {"accept-encoding": "br", "range": "bytes=0-1"}},
    ):
        response = await call_http(mw, **kwargs)
        assert response.header(OPT_OUT_HEADER) is None
        assert response.header("content-encoding") is None


async def test_cache_control_no_transform_untouched() -> None:
    mw = CompressionMiddleware(make_app(headers=[(b"Cache-Control", b"public, No-Transform")]))
    response = await call_http(mw, headers=BR)
    assert response.header("content-encoding") is None
    assert response.body == TEXT
    mw = CompressionMiddleware(make_app(headers=[(b"cache-control", b"no-cache")]))
    assert (await call_http(mw, headers=BR)).header("content-encoding") == "br"


async def test_early_hint_passes_before_start() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": ["</style.css>; rel=preload"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": TEXT})

    response = await call_http(CompressionMiddleware(app), headers=BR)
    assert [m["type"] for m in response.messages] == [
        "http.response.early_hint",
        "http.response.start",
        "http.response.body",
    ]
    assert decode("br", response.body) == TEXT


@settings(max_examples=120, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=700) | st.just(TEXT[:900]), min_size=1, max_size=6),
    with_length=st.booleans(),
    accept=st.sampled_from(["br", "gzip", "zstd", "gzip;q=0.5, br;q=0.4", "identity", ""]),
)
async def test_any_body_round_trips(chunks: list[bytes], with_length: bool, accept: str) -> None:
    mw = CompressionMiddleware(
        make_app(chunks, content_length=with_length), encodings=("br", "zstd", "gzip")
    )
    response = await call_http(mw, headers={"accept-encoding": accept})
    coding = response.header("content-encoding")
    assert decode(coding, response.body) == b"".join(chunks)
    lengths = response.header_all("content-length")
    assert len(lengths) <= 1
    if lengths and coding is not None:
        assert int(lengths[0]) == len(response.body)
    assert len(response.header_all("vary")) <= 1
    assert response.messages[-1]["more_body"] is False


@pytest.mark.parametrize("accept", ["br", "identity", None])
async def test_a_304_keeps_the_vary_of_the_200_it_stands_for(accept: str | None) -> None:
    # Caches refresh a stored response's headers from the 304 (RFC 9111
    # §4.3.4): without Accept-Encoding in its Vary, a cache could serve a
    # stored compressed body to a client that cannot decode it.
    headers = [(b"content-type", b"text/plain"), (b"Vary", b"Cookie")]
    plain = CompressionMiddleware(make_app(status=304))
    varied = CompressionMiddleware(make_app(status=304, headers=headers))
    sent = {} if accept is None else {"accept-encoding": accept}
    assert (await call_http(plain, headers=sent)).header_all("vary") == ["Accept-Encoding"]
    assert (await call_http(varied, headers=sent)).header_all("vary") == ["Cookie, Accept-Encoding"]
    assert headers == [(b"content-type", b"text/plain"), (b"Vary", b"Cookie")]
