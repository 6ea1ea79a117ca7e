"""Content codings for :mod:`asgi_kit.compression`: encoders, decoders, negotiation.

Encoders come in two shapes: a one-shot function (the whole body is known, no
flush overhead) and a stream object whose :meth:`chunk` compresses *and
flushes* so every chunk can be decoded by the client as soon as it arrives.
Decoders bound the output of every call, so a decompression bomb is detected
after at most one output piece, never after inflating it into memory.
"""

from __future__ import annotations

import asyncio
import os
import sys
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import brotli

from ._http import parse_qvalues

__all__ = [
    "BROTLI_DECODE_SUPPORTED",
    "DECODABLE",
    "SUPPORTED",
    "ZSTD_AVAILABLE",
    "Coding",
    "Decoder",
    "negotiate",
    "run_in_thread",
]

# --------------------------------------------------------------------------- zstd backend

_zstd_compress: Callable[[bytes, int], bytes] | None = None
_zstd_stream: Callable[[int], Stream] | None = None

try:  # Python 3.14+: the standard library.
    from compression import zstd as _stdlib_zstd  # type: ignore[import-not-found,unused-ignore]

    def _zstd_compress_stdlib(data: bytes, level: int) -> bytes:
        return bytes(_stdlib_zstd.compress(data, level=level))

    class _StdlibZstdStream:
        __slots__ = ("_c",)

        def __init__(self, level: int) -> None:
            self._c = _stdlib_zstd.ZstdCompressor(level=level)

        def chunk(self, data: bytes) -> bytes:
            c = self._c
            return bytes(c.compress(data, c.FLUSH_BLOCK))

        def finish(self, data: bytes) -> bytes:
            c = self._c
            return bytes(c.compress(data) + c.flush(c.FLUSH_FRAME))

    _zstd_compress = _zstd_compress_stdlib
    _zstd_stream = _StdlibZstdStream
except ImportError:
    try:
        import zstandard as _zstandard

        def _zstd_compress_zstandard(data: bytes, level: int) -> bytes:
            return bytes(_zstandard.compress(data, level))

        class _ZstandardStream:
            __slots__ = ("_c",)

            def __init__(self, level: int) -> None:
                # A compressor context per stream: contexts are not thread-safe.
                self._c = _zstandard.ZstdCompressor(level=level).compressobj()

            def chunk(self, data: bytes) -> bytes:
                c = self._c
                return bytes(c.compress(data) + c.flush(_zstandard.COMPRESSOBJ_FLUSH_BLOCK))

            def finish(self, data: bytes) -> bytes:
                c = self._c
                return bytes(c.compress(data) + c.flush())

        _zstd_compress = _zstd_compress_zstandard
        _zstd_stream = _ZstandardStream
    except ImportError:
        pass

#: Whether a zstd implementation (stdlib ``compression.zstd`` or ``zstandard``) is importable.
ZSTD_AVAILABLE = _zstd_compress is not None
#: Every response coding this module can produce, in the default server preference.
SUPPORTED = ("br", "zstd", "gzip")

# brotli >= 1.2 can bound the output of one decompression call; older versions
# cannot, so they are not trusted with client input.
BROTLI_DECODE_SUPPORTED = hasattr(brotli.Decompressor(), "can_accept_more_data")
#: Request codings that ``decompress_requests`` decodes (``x-gzip`` is gzip).
DECODABLE = frozenset(("gzip", "x-gzip", "br") if BROTLI_DECODE_SUPPORTED else ("gzip", "x-gzip"))


# --------------------------------------------------------------------------- encoders


class Stream(Protocol):
    """A streaming compressor: ``chunk`` compresses and flushes, ``finish`` ends."""

    def chunk(self, data: bytes) -> bytes: ...

    def finish(self, data: bytes) -> bytes: ...


class _BrotliStream:
    __slots__ = ("_c",)

    def __init__(self, quality: int) -> None:
        self._c = brotli.Compressor(quality=quality)

    def chunk(self, data: bytes) -> bytes:
        c = self._c
        return bytes(c.process(data) + c.flush())

    def finish(self, data: bytes) -> bytes:
        c = self._c
        return bytes(c.process(data) + c.finish()) if data else bytes(c.finish())


class _GzipStream:
    __slots__ = ("_c",)

    def __init__(self, level: int) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        c = self._c
        return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, data: bytes) -> bytes:
        c = self._c
        return c.compress(data) + c.flush()


if sys.version_info >= (3, 11):

    def _gzip_compress(data: bytes, level: int) -> bytes:
        return zlib.compress(data, level, wbits=31)

else:  # pragma: no cover - Python 3.10: zlib.compress has no wbits

    def _gzip_compress(data: bytes, level: int) -> bytes:
        c = zlib.compressobj(level, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()


def _brotli_compress(data: bytes, quality: int) -> bytes:
    # What brotli.compress does, minus its Python wrapper's frame and defaults.
    compressor = brotli.Compressor(quality=quality)
    return bytes(compressor.process(data) + compressor.finish())


class Coding:
    """One response coding with its level bound: ``compress`` (one shot) and ``stream()``."""

    __slots__ = ("_compress", "_level", "_stream", "name", "token")

    def __init__(self, name: str, level: int) -> None:
        self.name = name
        #: The ``Content-Encoding`` value.
        self.token = name.encode("ascii")
        self._level = level
        compress: Callable[[bytes, int], bytes] | None
        stream: Callable[[int], Stream] | None
        if name == "br":
            compress, stream = _brotli_compress, _BrotliStream
        elif name == "gzip":
            compress, stream = _gzip_compress, _GzipStream
        elif name == "zstd":
            compress, stream = _zstd_compress, _zstd_stream
        else:
            raise ValueError(f"unknown coding {name!r}")
        if compress is None or stream is None:
            raise ValueError(
                "zstd needs the 'zstandard' package (pip install 'asgi-kit[zstd]') "
                "or Python 3.14's compression.zstd"
            )
        self._compress = compress
        self._stream = stream

    def compress(self, data: bytes) -> bytes:
        """Compress a whole body in one call (no flush overhead)."""
        return self._compress(data, self._level)

    def stream(self) -> Stream:
        """A new streaming compressor (created only when a response is compressed)."""
        return self._stream(self._level)

    def __repr__(self) -> str:
        return f"Coding({self.name!r}, {self._level})"


# --------------------------------------------------------------------------- negotiation


def negotiate(accept_encoding: str | bytes, encodings: Sequence[str]) -> str | None:
    """Pick a coding from ``encodings`` for an ``Accept-Encoding`` value (RFC 9110 §12.5.3).

    ``encodings`` is the server's preference order, used to break ties between
    equal q-values.  A coding is acceptable when it is listed with ``q > 0``,
    or is not listed while ``*`` is (with ``q > 0``).  ``x-gzip`` counts as
    ``gzip`` unless ``gzip`` is listed too.  When a name repeats, its first
    entry counts.  ``identity`` wins only when it is listed explicitly with a
    higher q than the best coding.
    Returns None (send the body as it is) when nothing is acceptable; malformed
    items are skipped, so a hostile header never raises.
    """
    explicit: dict[str, float] = {}
    for token, q in parse_qvalues(accept_encoding):
        explicit.setdefault(token, q)
    if "x-gzip" in explicit:  # an alias: an explicit "gzip" entry wins over it
        explicit.setdefault("gzip", explicit["x-gzip"])
    if not explicit:
        return None
    star = explicit.get("*", 0.0)
    best: str | None = None
    best_q = 0.0
    for name in encodings:
        q = explicit.get(name, star)
        if q > best_q:  # strict: the earlier (preferred) coding keeps a tie
            best, best_q = name, q
    if best is not None and explicit.get("identity", 0.0) > best_q:
        return None
    return best


# --------------------------------------------------------------------------- decoders

#: Largest piece of decoded request body handed to the app in one message.
PIECE = 64 * 1024


class Decoder(Protocol):
    """A bounded streaming decompressor for request bodies."""

    def needs_input(self) -> bool: ...

    def decode(self, data: bytes) -> bytes: ...

    def finished(self) -> bool: ...


class _GzipDecoder:
    __slots__ = ("_d", "_more", "_tail")

    def __init__(self) -> None:
        self._d = zlib.decompressobj(31)
        self._tail = b""
        self._more = False

    def needs_input(self) -> bool:
        return not self._more

    def decode(self, data: bytes) -> bytes:
        if self._tail:
            data = self._tail + data
        d = self._d
        out = d.decompress(data, PIECE)
        self._tail = d.unconsumed_tail
        if d.eof and d.unused_data:
            # A gzip body may hold several members (RFC 1952 §2.2): go on with the next.
            self._tail = d.unused_data
            self._d = zlib.decompressobj(31)
        # A full piece may leave output pending inside zlib even with no tail.
        self._more = bool(self._tail) or len(out) >= PIECE
        return out

    def finished(self) -> bool:
        return self._d.eof and not self._tail


class _BrotliDecoder:
    __slots__ = ("_d", "_more")

    def __init__(self) -> None:
        self._d = brotli.Decompressor()
        self._more = False

    def needs_input(self) -> bool:
        return not self._more

    def decode(self, data: bytes) -> bytes:
        d = self._d
        out = bytes(d.process(data, output_buffer_limit=PIECE))
        # The limit is soft: a full piece means more output may be pending,
        # even when the decoder says it could take more input.
        self._more = len(out) >= PIECE or not d.can_accept_more_data()
        return out

    def finished(self) -> bool:
        return bool(self._d.is_finished())


def make_decoder(coding: str) -> Decoder:
    """A decoder for a request coding in :data:`DECODABLE`."""
    if coding == "br":
        return _BrotliDecoder()
    return _GzipDecoder()


#: Exceptions a decoder raises on corrupt input.
DECODE_ERRORS: tuple[type[BaseException], ...] = (zlib.error, brotli.error)


# --------------------------------------------------------------------------- threads

_executor: ThreadPoolExecutor | None = None


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        # Compression is CPU-bound (zlib and brotli release the GIL): more
        # threads than cores only queue inside the kernel instead of here.
        workers = max(2, min(8, os.cpu_count() or 2))
        _executor = ThreadPoolExecutor(workers, thread_name_prefix="asgi_kit-compress")
    return _executor


async def run_in_thread(fn: Callable[[bytes], Any], data: bytes) -> Any:
    """Run ``fn(data)`` in the bounded compression thread pool.

    Outside an asyncio loop (e.g. Trio) the call runs inline.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - not under asyncio
        return fn(data)
    return await loop.run_in_executor(_get_executor(), fn, data)
