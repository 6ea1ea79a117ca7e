"""Content codings (asgi_kit._codings): zstd windows, the gzip speedups codec, dcz framing."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib

import brotli
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit import CompressionMiddleware
from asgi_kit import _codings as codings
from asgi_kit._codings import Coding

from ._support.asgi import call_http
from ._support.compression import GZIP_BACKENDS, gzip_backend  # noqa: F401

EIGHT_MB = 8 * 1024 * 1024
# Pseudo-random text with long-range repeats: a window above 8 MB would pay off.
_BLOCK = os.urandom(64 * 1024)
BIG = b"".join(_BLOCK[i % 7 * 1000 :] + b"%d" % i for i in range(200))  # ~12 MiB


def limited_decode(data: bytes) -> bytes:
    """Decode like a browser under RFC 9659: refuse any window above 8 MB."""
    d = zstandard.ZstdDecompressor(max_window_size=EIGHT_MB).decompressobj()
    return bytes(d.decompress(data))


def frame_window(data: bytes) -> int:
    params = zstandard.get_frame_parameters(data)
    # A single-segment frame's window is its content size.
    return int(params.window_size or params.content_size)


def test_window_log_table_is_capped() -> None:
    for level in range(1, 23):
        expected = zstandard.ZstdCompressionParameters.from_level(level).window_log
        assert codings.zstd_window_log(level) == min(expected, 23)


@pytest.mark.parametrize("level", [1, 3, 19, 20, 22])
def test_zstd_one_shot_window_at_most_8mb(level: int) -> None:
    coding = Coding("zstd", level)
    out = coding.compress(BIG)
    assert frame_window(out) <= EIGHT_MB
    assert limited_decode(out) == BIG
    threaded = coding.compress_threaded(BIG[: 3 * 1024 * 1024])
    assert limited_decode(threaded) == BIG[: 3 * 1024 * 1024]


@pytest.mark.parametrize("level", [3, 19, 22])
def test_zstd_stream_window_at_most_8mb(level: int) -> None:
    stream = Coding("zstd", level).stream()
    step = 1024 * 1024
    parts = [BIG[i : i + step] for i in range(0, len(BIG), step)]
    out = b"".join(stream.chunk(p) for p in parts[:-1]) + stream.finish(parts[-1])
    assert frame_window(out) <= EIGHT_MB
    assert limited_decode(out) == BIG


def test_unlimited_level_22_would_exceed_the_limit() -> None:
    # The check above can fail: zstd's own level 22 stream needs 128 MiB.
    c = zstandard.ZstdCompressor(level=22).compressobj()
    out = c.compress(BIG[:100_000]) + c.flush()
    with pytest.raises(zstandard.ZstdError):
        limited_decode(out)


@pytest.mark.parametrize(
    ("size", "log"),
    [(0, 23), (1000, 23), (EIGHT_MB, 23), (7 * 1024 * 1024, 23), (16 * 1024 * 1024, 24)],
)
def test_dcz_window_limit(size: int, log: int) -> None:
    # RFC 9842: max(8 MB, 1.25 x dictionary), at most 128 MB.
    assert codings.dcz_window_log(size) == log
    assert 2 ** codings.dcz_window_log(size) <= min(128 << 20, max(8 << 20, size * 5 // 4))
    assert codings.dcz_window_log(10**10) == 27


def test_dcz_frame_layout_and_round_trip() -> None:
    dictionary = b"".join(
        b"function f%s(p) { return p.%s; }\n"
        % (os.urandom(6).hex().encode(), os.urandom(4).hex().encode())
        for _ in range(400)
    )
    digest = hashlib.sha256(dictionary).digest()
    coding = Coding("dcz", 3, dictionary=dictionary, dictionary_hash=digest)
    body = dictionary[:5000] + b"// v2\n" + dictionary[5000:]
    zdict = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    for out in (coding.compress(body), coding.compress_threaded(body)):
        assert out[:8] == bytes.fromhex("5e2a4d1820000000")
        assert out[8:40] == digest
        frame = out[40:]
        d = zstandard.ZstdDecompressor(dict_data=zdict, max_window_size=EIGHT_MB)
        assert d.decompressobj().decompress(frame) == body
        assert len(out) < len(zstandard.compress(body, 3)) // 4
    stream = coding.stream()
    out = stream.chunk(body[:100]) + stream.chunk(b"") + stream.finish(body[100:])
    assert out[:40] == bytes.fromhex("5e2a4d1820000000") + digest
    d = zstandard.ZstdDecompressor(dict_data=zdict, max_window_size=EIGHT_MB)
    assert d.decompressobj().decompress(out[40:]) == body


def test_dcz_needs_a_dictionary() -> None:
    with pytest.raises(ValueError, match="dcz"):
        Coding("dcz", 3)


# --------------------------------------------------------------------------- gzip codecs


def test_speedups_codec_is_installed_for_the_tests() -> None:
    # The dev extra installs it: the suite covers both codecs.
    assert codings.ZLIB_NG is not None
    assert codings.DEFAULT_GZIP_BACKEND is codings.ZLIB_NG
    assert [b.name for b in GZIP_BACKENDS] == ["zlib-ng", "zlib"]


JSON = b"".join(
    b'{"id": %d, "name": "user %d", "email": "u%d@example.com", "score": %d},'
    % (i, i, i, i * 7 % 101)
    for i in range(600)
)


@pytest.mark.parametrize("level", range(1, 10))
def test_gzip_level_keeps_its_meaning(level: int) -> None:
    # Each codec's output stays within 5% of stdlib zlib's at the same gzip_level.
    reference = len(zlib.compress(JSON, level))
    for backend in GZIP_BACKENDS:
        out = Coding("gzip", level, gzip_backend=backend).compress(JSON)
        assert gzip.decompress(out) == JSON
        assert len(out) <= reference * 1.05 + 18, backend.name  # + gzip's header/trailer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.binary(max_size=3000) | st.text(max_size=2000).map(str.encode), max_size=6),
    level=st.integers(1, 9),
)
def test_gzip_codecs_round_trip(chunks: list[bytes], level: int) -> None:
    for backend in GZIP_BACKENDS:
        coding = Coding("gzip", level, gzip_backend=backend)
        body = b"".join(chunks)
        assert gzip.decompress(coding.compress(body)) == body
        stream = coding.stream()
        parts = [stream.chunk(c) for c in chunks[:-1]]
        parts.append(stream.finish(chunks[-1] if chunks else b""))
        # Every flushed prefix decodes to the chunks sent so far.
        d = zlib.decompressobj(31)
        seen = b""
        for i, part in enumerate(parts[:-1]):
            seen += d.decompress(part)
            assert seen == b"".join(chunks[: i + 1])
        assert gzip.decompress(b"".join(parts)) == body


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.binary(max_size=2000), min_size=1, max_size=5),
    name=st.sampled_from(["br", "zstd"]),
)
def test_other_codings_round_trip(chunks: list[bytes], name: str) -> None:
    coding = Coding(name, 5)
    body = b"".join(chunks)
    decode = (lambda b: bytes(brotli.decompress(b))) if name == "br" else limited_decode
    assert decode(coding.compress(body)) == body
    stream = coding.stream()
    out = b"".join(stream.chunk(c) for c in chunks[:-1]) + stream.finish(chunks[-1])
    assert decode(out) == body


@pytest.mark.usefixtures("gzip_backend")
async def test_middleware_uses_the_selected_gzip_codec() -> None:
    backend = codings.DEFAULT_GZIP_BACKEND
    body = JSON

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    mw = CompressionMiddleware(app, gzip_level=6)
    assert repr(mw._codings["gzip"]) == "Coding('gzip', 6)"
    response = await call_http(mw, headers={"accept-encoding": "gzip"})
    expected = backend.module.compress(body, backend.levels[6], wbits=31)
    assert response.body == expected
    assert gzip.decompress(response.body) == body


@pytest.mark.parametrize("name", ["zstd", "dcz"])
def test_one_coding_used_from_many_threads(name: str) -> None:
    # Django under WSGI runs an event loop per request thread: one Coding is
    # then used by several threads at once, and each must get intact frames.
    import threading

    dictionary = os.urandom(2000).hex().encode()
    coding = Coding(
        name, 3, dictionary=dictionary, dictionary_hash=hashlib.sha256(dictionary).digest()
    )
    bodies = [dictionary[i * 100 :] + os.urandom(100_000).hex().encode() for i in range(8)]
    failures: list[int] = []
    zdict = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)

    def work(i: int) -> None:
        for _ in range(10):
            out = coding.compress(bodies[i])
            if name == "dcz":
                d = zstandard.ZstdDecompressor(dict_data=zdict).decompressobj()
                ok = d.decompress(out[40:]) == bodies[i]
            else:
                ok = limited_decode(out) == bodies[i]
            if not ok:
                failures.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
