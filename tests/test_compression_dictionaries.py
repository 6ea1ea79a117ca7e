"""CompressionMiddleware(dictionaries=...): Compression Dictionary Transport (RFC 9842)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import brotli
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit import CompressionMiddleware
from asgi_kit import _codings as codings
from asgi_kit.compression import Dictionary
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http
from .apps.dictionary_app import V1, V2

DCZ_MAGIC = bytes.fromhex("5e2a4d1820000000")
EIGHT_MB = 8 * 1024 * 1024


# One header list for every response, as real apps keep module-level constants.
JS_HEADERS = [(b"Content-Type", b"text/javascript"), (b"ETag", b'"v"')]
JS_HEADERS_COPY = list(JS_HEADERS)
START = {"type": "http.response.start", "status": 200, "headers": JS_HEADERS}

DCZ = "gzip, deflate, br, zstd, dcb, dcz"
NO_DCZ = "gzip, deflate, br, zstd"


def sf_hash(data: bytes) -> str:
    return ":" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def site(status: int = 200, chunks: int = 1) -> Any:
    """/static/app.v1.js and /static/app.v2.js; other paths answer a JSON body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        body = V1 if path.endswith("v1.js") else V2 if path.endswith(".js") else b'{"a":1}' * 200
        await send(START if status == 200 else {**START, "status": status})
        if status == 304 or scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        step = -(-len(body) // chunks)
        for i in range(chunks):
            part = body[i * step : (i + 1) * step]
            await send({"type": "http.response.body", "body": part, "more_body": i < chunks - 1})
        if chunks > 1:
            await send({"type": "http.response.body", "body": b""})

    return app


def dcz_decode(body: bytes, dictionary: bytes) -> bytes:
    assert body[:8] == DCZ_MAGIC
    assert body[8:40] == hashlib.sha256(dictionary).digest()
    zdict = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    d = zstandard.ZstdDecompressor(dict_data=zdict, max_window_size=EIGHT_MB)
    return bytes(d.decompressobj().decompress(body[40:]))


def middleware(app: Any = None, **options: Any) -> CompressionMiddleware:
    options.setdefault("dictionaries", [("/static/app.*.js", "/static/app.*.js")])
    # zstd enabled (cheapest first), as a deployment using dcz would have it.
    options.setdefault("encodings", None)
    return CompressionMiddleware(app or site(), **options)


async def get(mw: Any, path: str, accept: str = DCZ, method: str = "GET", **headers: str) -> Any:
    raw = {"accept-encoding": accept, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return await call_http(mw, method, path, headers=raw)


async def test_dictionary_then_dcz_response() -> None:
    mw = middleware()
    first = await get(mw, "/static/app.v1.js")
    assert first.header("use-as-dictionary") == 'match="/static/app.*.js"'
    assert first.header("content-encoding") == "zstd"  # itself compressed as usual
    assert first.header("vary") == "Accept-Encoding, Available-Dictionary"

    second = await get(mw, "/static/app.v2.js", available_dictionary=sf_hash(V1))
    assert second.status == 200
    assert second.header("content-encoding") == "dcz"
    assert second.header("vary") == "Accept-Encoding, Available-Dictionary"
    assert second.header("content-length") == str(len(second.body))
    assert second.header("etag") == 'W/"v"'
    assert dcz_decode(second.body, V1) == V2
    plain = await get(mw, "/static/app.v2.js", accept="zstd")
    assert len(second.body) * 5 < len(plain.body)  # the point of it all
    assert JS_HEADERS == JS_HEADERS_COPY  # the app's header list is untouched
    assert START["headers"] is JS_HEADERS


async def test_streamed_dcz_response_is_flushed_per_chunk() -> None:
    mw = middleware(site(chunks=4))
    await get(mw, "/static/app.v1.js")
    response = await get(mw, "/static/app.v2.js", available_dictionary=sf_hash(V1))
    assert response.header("content-encoding") == "dcz"
    assert response.header("content-length") is None
    assert len([c for c in response.chunks if c]) >= 4
    assert dcz_decode(response.body, V1) == V2
    # Every flushed prefix decodes on its own, as a browser would show it.
    zdict = zstandard.ZstdCompressionDict(V1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    d = zstandard.ZstdDecompressor(dict_data=zdict).decompressobj()
    first = d.decompress(response.chunks[0][40:])
    assert V2.startswith(first) and len(first) >= len(V2) // 4 - 1


async def test_dictionary_options_in_the_header() -> None:
    config = Dictionary(
        "/static/app.*.js", "/static/app.*.js", id="app-v1", match_dest=("script",), max_age=3600
    )
    mw = middleware(dictionaries=[config])
    response = await get(mw, "/static/app.v1.js")
    assert response.header("use-as-dictionary") == (
        'match="/static/app.*.js", match-dest=("script"), id="app-v1"'
    )
    assert response.header("cache-control") == "max-age=3600"
    # match-dest: only requests for that destination use it.
    for dest, expected in (("script", "dcz"), ("document", "zstd"), (None, "zstd")):
        headers = {"available_dictionary": sf_hash(V1)}
        if dest is not None:
            headers["sec_fetch_dest"] = dest
        response = await get(mw, "/static/app.v2.js", **headers)
        assert response.header("content-encoding") == expected, dest


async def test_app_cache_control_is_kept() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"Cache-Control", b"public, max-age=60"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": V1})

    mw = middleware(app, dictionaries=[Dictionary("/d", "/r/*", max_age=10)])
    response = await get(mw, "/d")
    assert response.header_all("cache-control") == ["public, max-age=60"]


async def test_unknown_or_mismatched_hash_falls_back() -> None:
    mw = middleware()
    await get(mw, "/static/app.v1.js")
    for value in (sf_hash(V2), sf_hash(b"other"), ":not base64:", "abc", sf_hash(V1)[:-1]):
        response = await get(mw, "/static/app.v2.js", available_dictionary=value)
        assert response.header("content-encoding") == "zstd", value
        assert response.header("vary") == "Accept-Encoding, Available-Dictionary"


async def test_request_outside_match_does_not_use_the_dictionary() -> None:
    mw = middleware()
    await get(mw, "/static/app.v1.js")
    response = await get(mw, "/api/data", available_dictionary=sf_hash(V1))
    assert response.header("content-encoding") == "zstd"
    assert response.header("vary") == "Accept-Encoding"  # no dictionary could apply here


async def test_client_without_dcz() -> None:
    mw = middleware()
    # Browsers list dcz only once they hold a dictionary: the first response is
    # marked and remembered whatever the Accept-Encoding.
    first = await get(mw, "/static/app.v1.js", accept=NO_DCZ)
    assert first.header("use-as-dictionary") == 'match="/static/app.*.js"'
    assert len(mw._store) == 1  # type: ignore[arg-type]
    unencoded = await call_http(mw, "GET", "/static/app.v1.js")
    assert unencoded.header("use-as-dictionary") == 'match="/static/app.*.js"'
    assert unencoded.body == V1
    # dcz must be listed: Available-Dictionary alone, or "*", is not enough.
    for accept in (NO_DCZ, "*", "dcz;q=0, br"):
        response = await get(
            mw, "/static/app.v2.js", accept=accept, available_dictionary=sf_hash(V1)
        )
        assert response.header("content-encoding") != "dcz", accept


async def test_evicted_dictionary_falls_back() -> None:
    mw = middleware(dictionary_memory=max(len(V1), len(V2)) + 100)
    await get(mw, "/static/app.v1.js")
    await get(mw, "/static/app.v2.js")  # remembered too: v1 goes (least recently used)
    store = mw._store
    assert store is not None and len(store) == 1
    assert store.used <= store.memory
    response = await get(mw, "/static/app.v2.js", available_dictionary=sf_hash(V1))
    assert response.header("content-encoding") == "zstd"
    response = await get(mw, "/static/app.v1.js", available_dictionary=sf_hash(V2))
    assert response.header("content-encoding") == "dcz"
    assert dcz_decode(response.body, V2) == V1


async def test_memory_budget_counts_prepared_dictionaries() -> None:
    mw = middleware(dictionary_memory=3 * 1024 * 1024)
    store = mw._store
    assert store is not None
    for _ in range(20):
        digest = store.add(os.urandom(100_000), mw.dictionaries[0])
        assert store.coding_for(digest, "/static/app.v2.js", None) is not None  # prepared
        assert store.used <= store.memory
    assert len(store) < 20


async def test_too_large_dictionary_is_sent_not_remembered() -> None:
    mw = middleware(site(chunks=3), max_dictionary_size=len(V1) - 1)
    first = await get(mw, "/static/app.v1.js")
    assert first.header("use-as-dictionary") is not None
    assert len(mw._store) == 0  # type: ignore[arg-type]


async def test_head_gets_the_header_and_nothing_is_remembered() -> None:
    mw = middleware()
    head = await get(mw, "/static/app.v1.js", method="HEAD")
    assert head.header("use-as-dictionary") == 'match="/static/app.*.js"'
    assert head.body == b""
    assert len(mw._store) == 0  # type: ignore[arg-type]
    await get(mw, "/static/app.v1.js")
    head = await get(mw, "/static/app.v2.js", method="HEAD", available_dictionary=sf_hash(V1))
    assert head.header("content-encoding") is None
    assert head.header("vary") == "Accept-Encoding, Available-Dictionary"


async def test_304_with_dictionaries() -> None:
    mw = middleware(site(status=304))
    revalidated = await get(mw, "/static/app.v1.js")
    # The header refreshes the client's stored response; no body to remember.
    assert revalidated.status == 304
    assert revalidated.header("use-as-dictionary") == 'match="/static/app.*.js"'
    assert len(mw._store) == 0  # type: ignore[arg-type]
    warm = middleware(site())
    await get(warm, "/static/app.v1.js")
    warm.app = site(status=304)
    response = await get(warm, "/static/app.v2.js", available_dictionary=sf_hash(V1))
    assert response.status == 304
    assert response.header("content-encoding") is None
    assert response.body == b""


async def test_error_and_encoded_responses_are_not_dictionaries() -> None:
    mw = middleware(site(status=404))
    response = await get(mw, "/static/app.v1.js")
    assert response.header("use-as-dictionary") is None

    async def encoded(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-encoding", b"br"), (b"content-type", b"text/javascript")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"\x00" * 1000})

    mw = middleware(encoded)
    response = await get(mw, "/static/app.v1.js")
    assert response.header("use-as-dictionary") is None
    assert len(mw._store) == 0  # type: ignore[arg-type]


async def test_post_is_not_a_dictionary() -> None:
    mw = middleware()
    response = await call_http(mw, "POST", "/static/app.v1.js", headers={"accept-encoding": DCZ})
    assert response.header("use-as-dictionary") is None


@pytest.mark.parametrize("source", ["bytes", "file"])
async def test_static_dictionary_known_from_start(source: str, tmp_path: Path) -> None:
    if source == "bytes":
        config = Dictionary("/static/app.v1.js", "/static/app.*.js", content=V1)
    else:
        (tmp_path / "app.v1.js").write_bytes(V1)
        config = Dictionary.from_file(
            tmp_path / "app.v1.js", "/static/app.v1.js", "/static/app.*.js"
        )
    mw = middleware(dictionaries=[config], dictionary_memory=0)
    # No request for the dictionary yet (a new worker): it is known all the same,
    # and a zero budget for learnt dictionaries does not evict it.
    response = await get(mw, "/static/app.v2.js", available_dictionary=sf_hash(V1))
    assert response.header("content-encoding") == "dcz"
    assert dcz_decode(response.body, V1) == V2
    first = await get(mw, "/static/app.v1.js")
    assert first.header("use-as-dictionary") == 'match="/static/app.*.js"'


async def test_dcz_window_is_within_the_rfc_limit() -> None:
    big = os.urandom(6 * 1024 * 1024)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = big if scope["path"] == "/d" else big[:1000] + b"new" + big[1000:]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    mw = CompressionMiddleware(
        app, dictionaries=[("/d", "/r")], max_dictionary_size=8 * 1024 * 1024
    )
    await get(mw, "/d")
    response = await get(mw, "/r", available_dictionary=sf_hash(big))
    assert response.header("content-encoding") == "dcz"
    params = zstandard.get_frame_parameters(response.body[40:])
    assert (params.window_size or params.content_size) <= max(EIGHT_MB, len(big) * 5 // 4)
    assert dcz_decode(response.body, big)[1000:1003] == b"new"


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"dictionaries": "/a"}, TypeError, "dictionaries"),
        ({"dictionaries": [("/a",)]}, TypeError, "dictionaries"),
        ({"dictionaries": [("/a", 3)]}, TypeError, "match"),
        ({"dictionaries": [("a", "/b")]}, ValueError, "path"),
        ({"dictionaries": [("/a", "b")]}, ValueError, "match"),
        ({"dictionaries": [("/a", "/b/:id")]}, ValueError, "match"),
        ({"dictionaries": [("/a", '/b"')]}, ValueError, "match"),
        ({"dictionaries": [("/a", "/b\u00e9")]}, ValueError, "match"),
        ({"dictionary_memory": -1}, ValueError, "dictionary_memory"),
        ({"max_dictionary_size": 0}, ValueError, "max_dictionary_size"),
        ({"max_dictionary_size": "1"}, TypeError, "max_dictionary_size"),
    ],
)
def test_invalid_dictionary_options(
    kwargs: dict[str, Any], exc: type[Exception], text: str
) -> None:
    with pytest.raises(exc, match=text):
        CompressionMiddleware(site(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"id": "x" * 1025}, ValueError, "id"),
        ({"id": 3}, TypeError, "id"),
        ({"match_dest": "script"}, TypeError, "match_dest"),
        ({"match_dest": ["Script!"]}, ValueError, "match_dest"),
        ({"max_age": 0}, ValueError, "max_age"),
        ({"max_age": 1.5}, TypeError, "max_age"),
        ({"content": "text"}, TypeError, "content"),
    ],
)
def test_invalid_dictionary_config(kwargs: dict[str, Any], exc: type[Exception], text: str) -> None:
    with pytest.raises(exc, match=text):
        Dictionary("/a", "/b", **kwargs)


def test_dictionaries_need_zstd(monkeypatch: pytest.MonkeyPatch) -> None:
    import asgi_kit.compression as compression

    monkeypatch.setattr(compression, "ZSTD_AVAILABLE", False)
    with pytest.raises(ValueError, match="dictionaries: dcz needs"):
        CompressionMiddleware(site(), encodings=("br",), dictionaries=[("/a", "/b")])
    monkeypatch.setattr(codings, "_zstd_encoder", None)


def test_sf_string_escaping() -> None:
    config = Dictionary("/a", "/b", id='say "hi" \\ bye')
    assert config.header == b'match="/b", id="say \\"hi\\" \\\\ bye"'


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    available=st.one_of(
        st.binary(max_size=80),
        st.text(max_size=60).map(str.encode),
        st.binary(min_size=32, max_size=32).map(lambda b: b":" + base64.b64encode(b) + b":"),
    ),
    dest=st.binary(max_size=20),
    accept=st.sampled_from([DCZ, NO_DCZ, "dcz", "dcz;q=0", ""]),
)
async def test_hostile_dictionary_headers_never_fail(
    available: bytes, dest: bytes, accept: str
) -> None:
    mw = _HOSTILE_MW
    headers = [
        (b"accept-encoding", accept.encode()),
        (b"available-dictionary", available),
        (b"sec-fetch-dest", dest),
    ]
    response = await call_http(mw, "GET", "/static/app.v2.js", headers=headers)
    assert response.status == 200
    assert response.header("content-encoding") in (None, "zstd", "br", "dcz")


_HOSTILE_MW = middleware()


async def test_django_settings_form() -> None:
    # The Django adapter reads the same options from settings.ASGI_KIT.
    from django.test import override_settings

    import asgi_kit.contrib.django as dj
    from tests.apps.django_project import configure

    configure()
    entry = {"dictionaries": [("/static/app.*.js", "/static/app.*.js")]}
    with override_settings(ASGI_KIT={"CompressionMiddleware": entry}):
        options = dj.CompressionMiddleware.options()
    mw = CompressionMiddleware(site(), **options)
    await get(mw, "/static/app.v1.js")
    response = await get(mw, "/static/app.v2.js", available_dictionary=sf_hash(V1))
    assert response.header("content-encoding") == "dcz"


def _doc_block(marker: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "compression.md").read_text()
    start = text.index("```python\n", text.index(marker)) + len("```python\n")
    return text[start : text.index("```", start)]


async def test_raw_asgi_doc_example_runs() -> None:
    namespace: dict[str, Any] = {}
    exec(_doc_block("### Examples\n\nRaw ASGI:"), namespace)
    app = namespace["app"]
    first = await get(app, "/static/app.v1.js", sec_fetch_dest="script")
    assert first.header("use-as-dictionary") == 'match="/static/app.*.js", match-dest=("script")'
    body = b"export const version = 2; /* ... */" * 100
    response = await get(
        app, "/static/app.v2.js", sec_fetch_dest="script", available_dictionary=sf_hash(body)
    )
    assert response.header("content-encoding") == "dcz"
    assert dcz_decode(response.body, body) == body


async def test_fastapi_doc_example_runs() -> None:
    namespace: dict[str, Any] = {}
    exec(_doc_block("FastAPI / Starlette:\n\n```python\nfrom fastapi"), namespace)
    app = namespace["app"]
    first = await get(app, "/api/products")
    assert first.header("use-as-dictionary") == 'match="/api/products"'
    assert first.header("cache-control") == "max-age=300"
    response = await get(app, "/api/products", available_dictionary=sf_hash(dcz_plain(first)))
    assert response.header("content-encoding") == "dcz"
    assert json.loads(dcz_decode(response.body, dcz_plain(first)))[299]["id"] == 299


def dcz_plain(response: Any) -> bytes:
    """The identity body of a response compressed as usual (zstd, br, gzip or none)."""
    coding = response.header("content-encoding")
    if coding == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(response.body))
    if coding == "br":
        return bytes(brotli.decompress(response.body))
    if coding == "gzip":
        return gzip.decompress(response.body)
    assert coding is None, coding
    return bytes(response.body)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dictionary=st.binary(min_size=1, max_size=3000),
    chunks=st.lists(st.binary(max_size=1500), min_size=1, max_size=5),
    with_length=st.booleans(),
)
async def test_any_body_round_trips_as_dcz(
    dictionary: bytes, chunks: list[bytes], with_length: bool
) -> None:
    body = b"".join(chunks)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain")]
        if scope["path"] == "/d":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": dictionary})
            return
        if with_length:
            headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    mw = CompressionMiddleware(app, minimum_size=0, dictionaries=[("/d", "/r")])
    await get(mw, "/d")
    response = await get(mw, "/r", available_dictionary=sf_hash(dictionary))
    coding = response.header("content-encoding")
    if coding == "dcz":
        assert dcz_decode(response.body, dictionary) == body
    else:  # empty, or not smaller than the identity body in one shot
        assert coding is None and response.body == body
