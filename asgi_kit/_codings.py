"""Content codings for :mod:`asgi_kit.compression`: encoders, decoders, negotiation.

Encoders come in two shapes: a one-shot function (the whole body is known, no
flush overhead) and a stream object whose :meth:`chunk` compresses *and
flushes* so every chunk can be decoded by the client as soon as it arrives.
Decoders bound the output of every call, so a decompression bomb is detected
after at most one output piece, never after inflating it into memory.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
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

#: Largest zstd window an HTTP ``zstd`` response may use (RFC 9659 §3: 8 MB).
ZSTD_MAX_WINDOW_LOG = 23
# zstd's default window log per level 0-22 for an unknown size (the table in
# zstd_compress.c); levels 20-22 use 32-128 MiB, which RFC 9659 forbids.
_ZSTD_LEVEL_WINDOW_LOG: tuple[int, ...] = (21, 19, 20, 21, 21, 21, 21, 21, 21, 22, 22, 22)
_ZSTD_LEVEL_WINDOW_LOG += (22, 22, 22, 22, 22, 23, 23, 23, 25, 26, 27)


def zstd_window_log(level: int) -> int:
    """The window log asgi_kit uses for a zstd level: the level's own, capped at 8 MB."""
    return min(_ZSTD_LEVEL_WINDOW_LOG[level], ZSTD_MAX_WINDOW_LOG)


def dcz_window_log(dictionary_size: int) -> int:
    """The largest window log RFC 9842 allows for ``dcz`` with this dictionary.

    The window may be 8 MB or 1.25 times the dictionary, whichever is larger,
    and never more than 128 MB; zstd windows are powers of two, so round down.
    """
    limit = min(128 * 1024 * 1024, max(8 * 1024 * 1024, dictionary_size * 5 // 4))
    return limit.bit_length() - 1


class ZstdEncoder(Protocol):
    """A zstd level, window and optional raw-content dictionary, prepared once."""

    def compress(self, data: bytes) -> bytes:
        """One shot, on the event loop's thread."""

    def compress_threaded(self, data: bytes) -> bytes:
        """One shot from a worker thread (its own context)."""

    def stream(self) -> Stream: ...


_zstd_encoder: Callable[[int, int, bytes | None], ZstdEncoder] | None = None

try:  # Python 3.14+: the standard library.
    from compression import zstd as _stdlib_zstd  # type: ignore[import-not-found,unused-ignore]

    class _StdlibZstdStream:
        __slots__ = ("_c",)

        def __init__(self, c: Any) -> None:
            self._c = c

        def chunk(self, data: bytes) -> bytes:
            c = self._c
            return bytes(c.compress(data, c.FLUSH_BLOCK))

        def finish(self, data: bytes) -> bytes:
            c = self._c
            return bytes(c.compress(data, c.FLUSH_FRAME))

    class _StdlibZstdEncoder:
        __slots__ = ("_dict", "_options")

        def __init__(self, level: int, window_log: int, dictionary: bytes | None) -> None:
            param = _stdlib_zstd.CompressionParameter
            self._options = {param.compression_level: level, param.window_log: window_log}
            self._dict = (
                None if dictionary is None else _stdlib_zstd.ZstdDict(dictionary, is_raw=True)
            )

        def compress(self, data: bytes) -> bytes:
            return bytes(_stdlib_zstd.compress(data, options=self._options, zstd_dict=self._dict))

        compress_threaded = compress

        def stream(self) -> Stream:
            c = _stdlib_zstd.ZstdCompressor(options=self._options, zstd_dict=self._dict)
            return _StdlibZstdStream(c)

    _zstd_encoder = _StdlibZstdEncoder
except ImportError:
    try:
        import zstandard as _zstandard

        class _ZstandardStream:
            __slots__ = ("_c",)

            def __init__(self, c: Any) -> None:
                self._c = c

            def chunk(self, data: bytes) -> bytes:
                c = self._c
                return bytes(c.compress(data) + c.flush(_zstandard.COMPRESSOBJ_FLUSH_BLOCK))

            def finish(self, data: bytes) -> bytes:
                c = self._c
                return bytes(c.compress(data) + c.flush())

        class _ZstandardEncoder:
            __slots__ = ("_kwargs", "_local")

            def __init__(self, level: int, window_log: int, dictionary: bytes | None) -> None:
                params = _zstandard.ZstdCompressionParameters.from_level(
                    level, window_log=window_log
                )
                kwargs: dict[str, Any] = {"compression_params": params}
                if dictionary is not None:
                    zdict = _zstandard.ZstdCompressionDict(
                        dictionary, dict_type=_zstandard.DICT_TYPE_RAWCONTENT
                    )
                    # Digest the dictionary once, not on every response.
                    zdict.precompute_compress(compression_params=params)
                    kwargs["dict_data"] = zdict
                self._kwargs = kwargs
                # A context is not thread-safe, and a compressobj() uses its
                # compressor's context: one-shot calls use one compressor per
                # thread (the event loop's, each worker's; Django under WSGI
                # runs loops in several threads), streams get their own.
                self._local = threading.local()

            def compress(self, data: bytes) -> bytes:
                local = self._local
                try:
                    c = local.c
                except AttributeError:
                    c = local.c = _zstandard.ZstdCompressor(**self._kwargs)
                return bytes(c.compress(data))

            compress_threaded = compress

            def stream(self) -> Stream:
                return _ZstandardStream(_zstandard.ZstdCompressor(**self._kwargs).compressobj())

        _zstd_encoder = _ZstandardEncoder
    except ImportError:
        pass

#: Whether a zstd implementation (stdlib ``compression.zstd`` or ``zstandard``) is importable.
ZSTD_AVAILABLE = _zstd_encoder is not None


def zstd_encoder(level: int, window_log: int, dictionary: bytes | None = None) -> ZstdEncoder:
    """A prepared zstd encoder; raises ValueError when no zstd implementation is installed."""
    if _zstd_encoder is None:
        raise ValueError(
            "zstd needs the 'zstandard' package (pip install 'asgi-kit[zstd]') "
            "or Python 3.14's compression.zstd"
        )
    return _zstd_encoder(level, window_log, dictionary)


#: Every response coding this module can produce, in the default server preference.
SUPPORTED = ("zstd", "br", "gzip")

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
        out: bytes = c.process(data) + c.flush()
        return out

    def finish(self, data: bytes) -> bytes:
        c = self._c
        out: bytes = c.process(data) + c.finish() if data else c.finish()
        return out


class GzipBackend:
    """A zlib-compatible module producing gzip, and how ``gzip_level`` maps onto its levels."""

    __slots__ = ("levels", "module", "name")

    def __init__(self, name: str, module: Any, levels: dict[int, int]) -> None:
        self.name = name
        self.module = module
        #: ``gzip_level`` (zlib's 1-9) -> this module's level.
        self.levels = levels


#: Stdlib zlib, levels as they are.
ZLIB = GzipBackend("zlib", zlib, {level: level for level in range(1, 10)})

# zlib-ng (the ``speedups`` extra) at the lowest level whose output stays
# within 5% of stdlib zlib's at the asked level, measured on JSON, HTML and
# source text of 4-64 KiB (docs/compression.md has the table).  zlib-ng's
# level 1 is its "quick" strategy, ~45% larger than zlib's level 1.
_ZLIB_NG_LEVELS = {1: 2, 2: 2, 3: 3, 4: 3, 5: 5, 6: 5, 7: 7, 8: 7, 9: 7}
try:
    from zlib_ng import zlib_ng as _zlib_ng

    ZLIB_NG: GzipBackend | None = GzipBackend("zlib-ng", _zlib_ng, _ZLIB_NG_LEVELS)
except ImportError:
    ZLIB_NG = None

#: The gzip codec new middleware instances use: zlib-ng when installed, else stdlib zlib.
DEFAULT_GZIP_BACKEND = ZLIB_NG if ZLIB_NG is not None else ZLIB


class _GzipStream:
    __slots__ = ("_c", "_sync")

    def __init__(self, module: Any, level: int) -> None:
        self._c = module.compressobj(level, module.DEFLATED, 31)
        self._sync = module.Z_SYNC_FLUSH

    def chunk(self, data: bytes) -> bytes:
        c = self._c
        out: bytes = c.compress(data) + c.flush(self._sync)
        return out

    def finish(self, data: bytes) -> bytes:
        c = self._c
        out: bytes = c.compress(data) + c.flush()
        return out


def _brotli_compress(data: bytes, quality: int) -> bytes:
    # What brotli.compress does, minus its Python wrapper's frame and defaults.
    compressor = brotli.Compressor(quality=quality)
    return bytes(compressor.process(data) + compressor.finish())


#: The 8-byte magic that starts a ``dcz`` body (RFC 9842 §4), then the SHA-256.
DCZ_MAGIC = b"\x5e\x2a\x4d\x18\x20\x00\x00\x00"


class _PrefixedStream:
    """A stream whose first output starts with ``prefix`` (the dcz header)."""

    __slots__ = ("_inner", "_prefix")

    def __init__(self, inner: Stream, prefix: bytes) -> None:
        self._inner = inner
        self._prefix = prefix

    def chunk(self, data: bytes) -> bytes:
        out = self._inner.chunk(data)
        if self._prefix:
            out, self._prefix = self._prefix + out, b""
        return out

    def finish(self, data: bytes) -> bytes:
        out = self._inner.finish(data)
        if self._prefix:
            out, self._prefix = self._prefix + out, b""
        return out


class Coding:
    """One response coding with its level bound.

    ``compress(data)`` compresses a whole body on the event loop's thread,
    ``compress_threaded(data)`` does the same from a worker thread, and
    ``stream()`` makes a streaming compressor.  Everything that does not
    depend on the body is prepared here, once.
    """

    __slots__ = ("_level", "compress", "compress_threaded", "name", "stream", "token")

    compress: Callable[[bytes], bytes]
    compress_threaded: Callable[[bytes], bytes]
    stream: Callable[[], Stream]

    def __init__(
        self,
        name: str,
        level: int,
        *,
        gzip_backend: GzipBackend | None = None,
        dictionary: bytes | None = None,
        dictionary_hash: bytes | None = None,
    ) -> None:
        self.name = name
        #: The ``Content-Encoding`` value.
        self.token = name.encode("ascii")
        self._level = level
        if name == "br":
            self.compress = functools.partial(_brotli_compress, quality=level)
            self.compress_threaded = self.compress
            self.stream = functools.partial(_BrotliStream, level)
        elif name == "gzip":
            backend = gzip_backend or DEFAULT_GZIP_BACKEND
            module, mapped = backend.module, backend.levels[level]
            if backend is ZLIB and sys.version_info < (3, 11):  # pragma: no cover
                self.compress = functools.partial(_gzip_compress_310, level=mapped)
            else:
                self.compress = functools.partial(module.compress, level=mapped, wbits=31)
            self.compress_threaded = self.compress
            self.stream = functools.partial(_GzipStream, module, mapped)
        elif name == "zstd":
            encoder = zstd_encoder(level, zstd_window_log(level))
            self.compress = encoder.compress
            self.compress_threaded = encoder.compress_threaded
            self.stream = encoder.stream
        elif name == "dcz":
            if dictionary is None or dictionary_hash is None:
                raise ValueError("dcz needs a dictionary and its SHA-256")
            encoder = zstd_encoder(level, dcz_window_log(len(dictionary)), dictionary)
            header = DCZ_MAGIC + dictionary_hash
            inner, inner_threaded = encoder.compress, encoder.compress_threaded
            self.compress = lambda data: header + inner(data)
            self.compress_threaded = lambda data: header + inner_threaded(data)
            self.stream = lambda: _PrefixedStream(encoder.stream(), header)
        else:
            raise ValueError(f"unknown coding {name!r}")

    def __repr__(self) -> str:
        return f"Coding({self.name!r}, {self._level})"


def _gzip_compress_310(data: bytes, level: int) -> bytes:  # pragma: no cover
    # Python 3.10: zlib.compress has no wbits.
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


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
