"""CompressionMiddleware(decompress_requests=True): decoding request bodies safely."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit import CompressionMiddleware
from asgi_kit._codings import PIECE
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import call_http

DATA = b"".join(b'{"row": %d, "text": "lorem ipsum dolor"}\n' % i for i in range(3000))


def echo_app(seen: list[Any]) -> Any:
    """Reads the whole body (recording every message), answers its length."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["headers"])
        body = b""
        while True:
            message = await receive()
            seen.append(message)
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        payload = b"%d:" % len(body) + body[:64]
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


def bodies(seen: list[Any]) -> bytes:
    return b"".join(m.get("body", b"") for m in seen[1:] if m["type"] == "http.request")


async def test_gzip_request_decoded_in_bounded_pieces() -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    raw = gzip.compress(DATA)
    headers = {"content-encoding": "gzip", "content-length": str(len(raw)), "x-other": "1"}
    response = await call_http(mw, "POST", headers=headers, body=raw)
    assert response.status == 200
    assert response.body.startswith(b"%d:" % len(DATA))
    assert bodies(seen) == DATA
    names = [k for k, _ in seen[0]]
    assert b"content-encoding" not in names
    assert b"content-length" not in names
    assert b"x-other" in names
    assert all(len(m["body"]) <= PIECE for m in seen[1:])
    assert len(seen) > 2  # more than one piece for ~140 KB of output


async def test_brotli_request_in_many_chunks() -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    raw = brotli.compress(DATA)
    parts = [raw[i : i + 100] for i in range(0, len(raw), 100)]
    response = await call_http(mw, "POST", headers={"content-encoding": "BR"}, body=parts)
    assert response.status == 200
    assert bodies(seen) == DATA
    assert seen[-1]["more_body"] is False


async def test_multi_member_gzip() -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    raw = gzip.compress(b"first ") + gzip.compress(b"second")
    response = await call_http(mw, "POST", headers={"content-encoding": "x-gzip"}, body=raw)
    assert response.status == 200
    assert bodies(seen) == b"first second"


async def test_bomb_answered_413_without_inflating() -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(
        echo_app(seen), decompress_requests=True, max_decompressed_size=1024 * 1024
    )
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MiB -> ~64 KB
    response = await call_http(mw, "POST", headers={"content-encoding": "gzip"}, body=bomb)
    assert response.status == 413
    assert response.body == b"Request body too large"
    assert sum(len(m.get("body", b"")) for m in seen[1:]) <= 1024 * 1024


async def test_brotli_bomb_413() -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True, max_decompressed_size=1000)
    bomb = brotli.compress(b"a" * 10_000_000)
    response = await call_http(mw, "POST", headers={"content-encoding": "br"}, body=bomb)
    assert response.status == 413


async def test_limit_is_inclusive() -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(
        echo_app(seen), decompress_requests=True, max_decompressed_size=len(DATA)
    )
    response = await call_http(
        mw, "POST", headers={"content-encoding": "gzip"}, body=gzip.compress(DATA)
    )
    assert response.status == 200


async def test_bomb_inside_starlette_error_handling_still_413() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def upload(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    inner = Starlette(routes=[Route("/", upload, methods=["POST"])])
    mw = CompressionMiddleware(inner, decompress_requests=True, max_decompressed_size=10_000)
    bomb = gzip.compress(b"x" * 1_000_000)
    response = await call_http(mw, "POST", headers={"content-encoding": "gzip"}, body=bomb)
    assert response.status == 413
    assert response.body == b"Request body too large"
    ok = await call_http(
        mw, "POST", headers={"content-encoding": "gzip"}, body=gzip.compress(b"y" * 5000)
    )
    assert (ok.status, ok.body) == (200, b"5000")


async def test_corrupt_and_truncated_bodies_are_400() -> None:
    for body in (b"definitely not gzip", gzip.compress(DATA)[:-40], gzip.compress(b"a") + b"junk"):
        seen: list[Any] = []
        mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
        response = await call_http(mw, "POST", headers={"content-encoding": "gzip"}, body=body)
        assert response.status == 400, body
        assert response.body == b"Malformed compressed request body"


async def test_off_by_default_and_unknown_codings_untouched() -> None:
    raw = gzip.compress(DATA)
    seen: list[Any] = []
    await call_http(
        CompressionMiddleware(echo_app(seen)),
        "POST",
        headers={"content-encoding": "gzip"},
        body=raw,
    )
    assert bodies(seen) == raw
    assert (b"content-encoding", b"gzip") in seen[0]
    seen = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    await call_http(mw, "POST", headers={"content-encoding": "identity"}, body=b"abc")
    assert bodies(seen) == b"abc"
    assert (b"content-encoding", b"identity") in seen[0]


@pytest.mark.parametrize("coding", ["deflate", "gzip, deflate", "compress, br", "dcz"])
async def test_unknown_request_coding_is_415(coding: str) -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    response = await call_http(mw, "POST", headers={"content-encoding": coding}, body=b"abc")
    assert response.status == 415
    assert response.header("accept-encoding") == "br, gzip"
    assert seen == []  # the app never saw a body it could not read


def _stacked(data: bytes, codings: list[str]) -> bytes:
    for coding in codings:  # in the order applied
        data = gzip.compress(data) if coding in ("gzip", "x-gzip") else brotli.compress(data)
    return data


@pytest.mark.parametrize("codings", [["br", "gzip"], ["gzip", "br"], ["gzip", "gzip"]])
@pytest.mark.parametrize("lines", [True, False])
async def test_stacked_request_codings_decoded_in_reverse(codings: list[str], lines: bool) -> None:
    # Two Content-Encoding lines are one list, like the same codings on one line.
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    raw = _stacked(DATA, codings)
    if lines:
        headers = [("Content-Encoding", codings[0]), ("content-encoding", codings[1])]
    else:
        headers = [("content-encoding", ", ".join(codings))]
    response = await call_http(mw, "POST", headers=headers, body=raw)
    assert response.status == 200
    assert bodies(seen) == DATA
    assert all(k != b"content-encoding" for k, _ in seen[0])


async def test_stacked_codings_with_identity_and_case() -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    raw = _stacked(b"hello", ["br", "gzip"])
    headers = [("content-encoding", "BR, identity"), ("content-encoding", "GZip")]
    response = await call_http(mw, "POST", headers=headers, body=raw)
    assert (response.status, bodies(seen)) == (200, b"hello")


async def test_stacked_codings_bomb_in_the_inner_coding_is_413() -> None:
    mw = CompressionMiddleware(echo_app([]), decompress_requests=True, max_decompressed_size=5000)
    raw = _stacked(b"z" * 1_000_000, ["br", "gzip"])
    headers = [("content-encoding", "br"), ("content-encoding", "gzip")]
    response = await call_http(mw, "POST", headers=headers, body=raw)
    assert response.status == 413


async def test_stacked_codings_corrupt_inner_is_400() -> None:
    mw = CompressionMiddleware(echo_app([]), decompress_requests=True)
    raw = gzip.compress(b"not brotli at all")
    response = await call_http(mw, "POST", headers={"content-encoding": "br, gzip"}, body=raw)
    assert response.status == 400


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        st.sampled_from(["gzip", "br", "identity", "x-gzip", "deflate", "", " , ", "GZIP"]),
        min_size=1,
        max_size=4,
    ),
    body=st.binary(max_size=100),
)
async def test_hostile_content_encoding_lines_never_500(values: list[str], body: bytes) -> None:
    mw = CompressionMiddleware(echo_app([]), decompress_requests=True)
    headers = [("content-encoding", v) for v in values]
    response = await call_http(mw, "POST", headers=headers, body=body)
    assert response.status in (200, 400, 413, 415)


async def test_disconnect_passes_through() -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        received.append(await receive())

    mw = CompressionMiddleware(app, decompress_requests=True)
    response = await call_http(
        mw, "POST", headers={"content-encoding": "gzip"}, body=gzip.compress(b"hi")
    )
    assert response.status == 200
    assert received[0] == {"type": "http.request", "body": b"hi", "more_body": False}
    assert received[1]["type"] == "http.disconnect"


async def test_response_of_decoded_request_is_still_compressed() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": DATA})

    mw = CompressionMiddleware(app, decompress_requests=True)
    response = await call_http(
        mw,
        "POST",
        headers={"content-encoding": "gzip", "accept-encoding": "br"},
        body=gzip.compress(b"x"),
    )
    assert response.header("content-encoding") == "br"
    assert brotli.decompress(response.body) == DATA


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=200).map(lambda b: gzip.compress(b)[: max(1, len(b) // 2)]),
        st.binary(max_size=200).map(gzip.compress),
        st.binary(max_size=200).map(lambda b: brotli.compress(b)),
    ),
    coding=st.sampled_from(["gzip", "br"]),
    split=st.integers(1, 50),
)
async def test_hostile_request_bodies_never_500(body: bytes, coding: str, split: int) -> None:
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True, max_decompressed_size=150)
    parts = [body[i : i + split] for i in range(0, len(body), split)] or [b""]
    response = await call_http(mw, "POST", headers={"content-encoding": coding}, body=parts)
    assert response.status in (200, 400, 413)


async def test_bomb_after_response_started_propagates() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"early", "more_body": True})
        while (await receive()).get("more_body"):
            pass

    mw = CompressionMiddleware(app, decompress_requests=True, max_decompressed_size=1000)
    with pytest.raises(Exception, match="Request body too large") as info:
        await call_http(
            mw, "POST", headers={"content-encoding": "gzip"}, body=gzip.compress(b"z" * 100_000)
        )
    assert type(info.value).__name__ == "_BodyError"


@pytest.mark.parametrize(
    ("coding", "compress", "bound"),
    [("br", brotli.compress, 2 * PIECE), ("gzip", gzip.compress, PIECE)],
)
async def test_highly_compressed_body_in_one_message(
    coding: str, compress: Any, bound: int
) -> None:
    # One small message inflating to many pieces: all of it must arrive, in
    # bounded pieces (brotli's output limit is soft).
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    data = b"a" * 1_000_000
    headers = {"content-encoding": coding}
    response = await call_http(mw, "POST", headers=headers, body=compress(data))
    assert response.status == 200
    assert bodies(seen) == data
    assert all(len(m["body"]) <= bound for m in seen[1:])


@pytest.mark.parametrize("coding", ["gzip", "br"])
async def test_empty_body_with_a_coding_reads_as_empty(coding: str) -> None:
    # Clients that label every request (GETs included) with a coding send no
    # bytes at all: nothing to decode is an empty body, not a malformed one.
    seen: list[Any] = []
    mw = CompressionMiddleware(echo_app(seen), decompress_requests=True)
    response = await call_http(mw, "POST", headers={"content-encoding": coding}, body=b"")
    assert (response.status, response.body) == (200, b"0:")
