"""CompressionMiddleware: negotiated brotli / zstd / gzip response compression.

The middleware reads ``Accept-Encoding`` once per request (a dict look-up for
values it has seen before), holds ``http.response.start`` back until the first
body message tells it whether the body is worth compressing, and then either
compresses the whole body in one shot (exact ``Content-Length``) or compresses
and flushes each streamed chunk, so Server-Sent Events and long polls reach
the client as they are produced.  Optionally it also decodes compressed
request bodies, with a bound on the decoded size, and serves Compression
Dictionary Transport (RFC 9842, ``dcz``; see :mod:`asgi_kit._dictionaries`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ._codings import (
    DECODABLE,
    DECODE_ERRORS,
    SUPPORTED,
    ZSTD_AVAILABLE,
    Coding,
    Decoder,
    Stream,
    make_decoder,
    negotiate,
    run_in_thread,
)
from ._dictionaries import Dictionary, DictionaryStore, as_dictionaries, parse_available_dictionary
from ._http import (
    MutableHeaders,
    PathMatcher,
    asgi3,
    copy_start,
    parse_qvalues,
    send_response,
    split_comma_list,
)
from .types import AnyASGIApp, Headers, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_ENCODINGS",
    "DEFAULT_EXCLUDE_CONTENT_TYPES",
    "OPT_OUT_HEADER",
    "CompressionMiddleware",
    "Dictionary",
]

#: Media types sent as they are by default: already compressed or binary.
#: ``type/*`` does not match ``+xml``/``+json`` types (``image/svg+xml``
#: compresses well); ``a/b`` also matches ``a/b+suffix`` (``application/grpc+proto``).
DEFAULT_EXCLUDE_CONTENT_TYPES: tuple[str, ...] = (
    "image/*",
    "video/*",
    "audio/*",
    "font/woff",
    "font/woff2",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-brotli",
    "application/zstd",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/octet-stream",
    "application/grpc",
    "application/pdf",
)

#: Response header that opts one response out: ``x-asgi-kit-compression: off``.
#: The middleware always removes it before the response leaves.
OPT_OUT_HEADER = "x-asgi-kit-compression"

#: The codings offered by default: brotli before gzip for equal q-values.
DEFAULT_ENCODINGS: tuple[str, ...] = ("br", "gzip")
#: ``encodings=None``: every installed coding, cheapest first by the measured
#: cost for typical content (zstd when installed, then brotli, then gzip).
CHEAPEST_FIRST: tuple[str, ...] = ("zstd", "br", "gzip") if ZSTD_AVAILABLE else ("br", "gzip")

_OPT_OUT = OPT_OUT_HEADER.encode("ascii")
_SKIP_STATUS = frozenset((204, 206, 304))
# Lengths of the request header names read: range, accept-encoding, content-encoding;
# with dictionaries also sec-fetch-dest and available-dictionary.
_REQUEST_NAME_LENGTHS = frozenset((5, 15, 16))
_DICTIONARY_NAME_LENGTHS = frozenset((5, 14, 15, 16, 20))
_VARY_TOKENS: tuple[bytes, ...] = (b"Accept-Encoding",)
_VARY_DICTIONARY_TOKENS: tuple[bytes, ...] = (b"Accept-Encoding", b"Available-Dictionary")
_MISSING: Any = object()
# Distinct Accept-Encoding / Content-Type values cached; real traffic has a handful.
_CACHE_SIZE = 256
# Longer Accept-Encoding values are negotiated every time rather than remembered:
# browsers send ~25 bytes, and huge made-up values must not pin memory.
_MAX_CACHED_ACCEPT = 256
_TOO_LARGE = b"Request body too large"
_BAD_BODY = b"Malformed compressed request body"
_UNSUPPORTED = b"Unsupported request Content-Encoding"


def _request_codings(value: bytes) -> list[str]:
    """The request's codings in the order applied, ``identity`` left out, lower-case."""
    return [c for c in (c.lower() for c in split_comma_list(value)) if c != "identity"]


def _check_int(option: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{option} must be {bound}, got {value!r}")
    return value


def _as_tuple(option: str, value: Iterable[str]) -> tuple[str, ...]:
    # A lone string would be split into characters; a positional Starlette
    # argument (compresslevel is third there) would not be iterable at all.
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{option} must be a list of strings, got {value!r}")
    return tuple(value)


def _media_type(value: bytes) -> bytes:
    return value.partition(b";")[0].strip().lower()


class _TypeMatcher:
    """Excluded media types: exact names (plus ``+suffix`` variants) and ``type/*``."""

    __slots__ = ("_exact", "_wild", "cache")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[bytes] = set()
        wild: set[bytes] = set()
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"exclude_content_types: {pattern!r} is not a string")
            media = _media_type(pattern.encode("latin-1", "replace"))
            kind, slash, sub = media.partition(b"/")
            if not kind or not slash or not sub or b" " in media:
                raise ValueError(
                    f"exclude_content_types: {pattern!r} is not a media type like 'image/*'"
                )
            if sub == b"*":
                wild.add(kind)
            else:
                exact.add(media)
        self._exact = frozenset(exact)
        self._wild = frozenset(wild)
        #: Raw Content-Type value -> excluded; bounded.
        self.cache: dict[bytes, bool] = {}

    def _match(self, value: bytes) -> bool:
        media = _media_type(value)
        if media in self._exact:
            return True
        base, plus, suffix = media.partition(b"+")
        if plus and base in self._exact:
            return True
        if suffix in (b"xml", b"json"):  # structured text, e.g. image/svg+xml
            return False
        return media.partition(b"/")[0] in self._wild

    def __call__(self, value: bytes) -> bool:
        hit = self.cache.get(value)
        if hit is None:
            hit = self._match(value)
            if len(self.cache) >= _CACHE_SIZE:
                self.cache.clear()
            self.cache[value] = hit
        return hit


class CompressionMiddleware:
    """Compress responses with zstd, brotli or gzip, negotiated per request.

    With ``dictionaries``, also Compression Dictionary Transport (RFC 9842):
    declared responses are marked ``Use-As-Dictionary`` and remembered, and
    requests naming one in ``Available-Dictionary`` get ``dcz``.

    Args:
        app: The ASGI application to wrap (ASGI 2 apps are adapted).
        minimum_size: Bodies smaller than this many bytes are sent as they are
            (when the size is known: from ``Content-Length`` or a body sent in
            one message).
        encodings: Codings offered, in server preference order (it breaks
            ties between equal q-values), a subset of ``"zstd"``, ``"br"``,
            ``"gzip"``; the default is ``("br", "gzip")``.  None: every
            installed coding, cheapest first (:data:`CHEAPEST_FIRST`: zstd
            first where installed).  ``"zstd"`` needs the ``zstandard``
            package (extra ``zstd``) or Python 3.14.
        brotli_quality: Brotli quality, 0-11.
        gzip_level: gzip level on zlib's 1-9 scale (mapped onto zlib-ng's
            levels when the ``speedups`` extra is installed, keeping the
            output within 5% of zlib's).
        exclude_content_types: Media types never compressed; ``type/*``
            wildcards are allowed.
        exclude_paths: Request paths (exact or glob) never compressed.
        thread_minimum_size: Chunks at least this large are compressed in a
            worker thread so the event loop keeps serving other requests.
        compresslevel: Alias of ``gzip_level`` for Starlette's ``GZipMiddleware`` users.
        zstd_level: zstd level, 1-22 (window at most 8 MB at every level);
            also used for ``dcz``.
        decompress_requests: Decode request bodies sent with
            ``Content-Encoding: gzip`` or ``br`` (also stacked, over one or
            several header lines); other codings are answered ``415``.
        max_decompressed_size: Largest decoded request body accepted; larger
            ones are answered ``413``.
        dictionaries: ``(path, match)`` pairs or :class:`Dictionary` objects:
            GET responses for ``path`` are dictionaries for requests matching
            ``match`` (``*`` wildcards).  Needs zstd.
        dictionary_memory: Bytes of remembered dictionaries kept (LRU).
        max_dictionary_size: Largest response remembered as a dictionary.

    Raises:
        ValueError: An option is out of range or names an unknown coding.
        TypeError: An option has the wrong type.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        minimum_size: int = 500,
        encodings: Iterable[str] | None = DEFAULT_ENCODINGS,
        brotli_quality: int = 4,
        gzip_level: int = 6,
        exclude_content_types: Iterable[str] = DEFAULT_EXCLUDE_CONTENT_TYPES,
        exclude_paths: Iterable[str] = (),
        *,
        thread_minimum_size: int = 128 * 1024,
        compresslevel: int | None = None,
        zstd_level: int = 3,
        decompress_requests: bool = False,
        max_decompressed_size: int = 10 * 1024 * 1024,
        dictionaries: Iterable[tuple[str, str] | Dictionary] = (),
        dictionary_memory: int = 64 * 1024 * 1024,
        max_dictionary_size: int = 4 * 1024 * 1024,
    ) -> None:
        self.app = asgi3(app)
        self.minimum_size = _check_int("minimum_size", minimum_size, 0)
        self._minimum_digits = len(str(minimum_size))
        self.brotli_quality = _check_int("brotli_quality", brotli_quality, 0, 11)
        _check_int("gzip_level", gzip_level, 1, 9)
        if compresslevel is not None:
            _check_int("compresslevel", compresslevel, 1, 9)
            if gzip_level != 6 and gzip_level != compresslevel:
                raise ValueError("give gzip_level or its alias compresslevel, not both")
            gzip_level = compresslevel
        self.gzip_level = gzip_level
        self.zstd_level = _check_int("zstd_level", zstd_level, 1, 22)
        self.thread_minimum_size = _check_int("thread_minimum_size", thread_minimum_size, 0)
        if not isinstance(decompress_requests, bool):
            raise TypeError(f"decompress_requests must be a bool, got {decompress_requests!r}")
        self.decompress_requests = decompress_requests
        self.max_decompressed_size = _check_int("max_decompressed_size", max_decompressed_size, 1)
        decodable = sorted(DECODABLE - {"x-gzip"})
        self._accept_header = [(b"accept-encoding", ", ".join(decodable).encode("ascii"))]

        names = _as_tuple("encodings", CHEAPEST_FIRST if encodings is None else encodings)
        levels = {"br": brotli_quality, "gzip": gzip_level, "zstd": zstd_level}
        if not names:
            raise ValueError("encodings must name at least one coding")
        for name in names:
            if name not in levels:
                raise ValueError(f"encodings: {name!r} is not one of {', '.join(SUPPORTED)}")
        if len(set(names)) != len(names):
            raise ValueError(f"encodings: {names!r} names a coding twice")
        try:
            self._codings = {name: Coding(name, levels[name]) for name in names}
        except ValueError as exc:
            raise ValueError(f"encodings: {exc}") from None
        self.encodings = names
        self.exclude_content_types = _as_tuple("exclude_content_types", exclude_content_types)
        self._exclude_types = _TypeMatcher(self.exclude_content_types)
        self._excluded_type_cache = self._exclude_types.cache
        self._exclude_paths = PathMatcher(exclude_paths, "exclude_paths")
        self.exclude_paths = self._exclude_paths.patterns
        self._has_exclude_paths = bool(self.exclude_paths)
        # Accept-Encoding value -> chosen coding (None: send as is).
        self._negotiated: dict[bytes, Coding | None] = {}

        self.dictionaries = as_dictionaries("dictionaries", dictionaries)
        self.dictionary_memory = _check_int("dictionary_memory", dictionary_memory, 0)
        self.max_dictionary_size = _check_int("max_dictionary_size", max_dictionary_size, 1)
        self._dictionaries = self.dictionaries
        self._store: DictionaryStore | None = None
        self._request_name_lengths = _REQUEST_NAME_LENGTHS
        # Accept-Encoding value -> whether it names dcz.
        self._dcz_accepted: dict[bytes, bool] = {}
        if self.dictionaries:
            if not ZSTD_AVAILABLE:
                raise ValueError(
                    "dictionaries: dcz needs the 'zstandard' package "
                    "(pip install 'asgi-kit[zstd]') or Python 3.14's compression.zstd"
                )
            self._store = DictionaryStore(self.dictionaries, zstd_level, dictionary_memory)
            self._request_name_lengths = _DICTIONARY_NAME_LENGTHS
            # Requests a configured dictionary may serve: their answer also
            # depends on Available-Dictionary.
            joined = "|".join(f"(?:{d.match_pattern})" for d in self.dictionaries)
            self._dictionary_requests = re.compile(joined).match

    def _negotiate(self, accept: bytes) -> Coding | None:
        name = negotiate(accept, self.encodings)
        coding = None if name is None else self._codings[name]
        if len(accept) <= _MAX_CACHED_ACCEPT:
            if len(self._negotiated) >= _CACHE_SIZE:
                self._negotiated.clear()  # bounded even against hostile clients
            self._negotiated[accept] = coding
        return coding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept: bytes | None = None
        ranged = False
        request_coding: bytes | None = None
        available: bytes | None = None
        dest: bytes | None = None
        lengths = self._request_name_lengths
        for key, value in scope["headers"]:
            n = len(key)
            if n not in lengths:  # one set look-up for most headers
                continue
            if n == 15:
                if key == b"accept-encoding" or key.lower() == b"accept-encoding":
                    accept = value if accept is None else accept + b"," + value
            elif n == 5:
                if key == b"range" or key.lower() == b"range":
                    ranged = True
            elif n == 16:
                if key == b"content-encoding" or key.lower() == b"content-encoding":
                    # Several lines are one list (RFC 9110 §5.3), in the order applied.
                    request_coding = (
                        value if request_coding is None else request_coding + b"," + value
                    )
            elif n == 20:
                if key.lower() == b"available-dictionary":
                    available = value
            elif key.lower() == b"sec-fetch-dest":
                dest = value

        if request_coding is not None and self.decompress_requests:
            codings = _request_codings(request_coding)
            if codings:
                if any(c not in DECODABLE for c in codings):
                    # RFC 9110 §15.5.16: 415, with what would have been accepted.
                    await send_response(send, 415, _UNSUPPORTED, headers=self._accept_header)
                    return
                await self._call_decoding(scope, receive, send, codings)
                return

        # Range requests: byte ranges refer to the identity body, leave them alone.
        if ranged or (self._has_exclude_paths and self._exclude_paths(scope.get("path", ""))):

            async def send_untouched(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = _without_opt_out(message)
                await send(message)

            await self.app(scope, receive, send_untouched)
            return
        coding: Coding | None = None
        vary = _VARY_TOKENS
        method = scope.get("method")
        recorder: _DictionaryRecorder | None = None
        if self._store is not None:
            path = scope.get("path", "")
            if self._dictionary_requests(path):
                vary = _VARY_DICTIONARY_TOKENS
            if (
                available is not None
                and method != "HEAD"
                and accept is not None
                and self._accepts_dcz(accept)
            ):
                digest = parse_available_dictionary(available)
                if digest is not None:
                    fetch_dest = None if dest is None else dest.decode("latin-1").strip()
                    coding = self._store.coding_for(digest, path, fetch_dest)
            # Browsers list dcz only on requests that already name a dictionary,
            # so every GET of a dictionary path is marked and remembered.
            if method == "GET" or method == "HEAD":
                for config in self._dictionaries:
                    if config.paths(path):
                        recorder = _DictionaryRecorder(self, config, method == "GET")
                        break
        # HEAD: no body to compress, but the same Vary a GET gets (RFC 9110 §9.3.2).
        if coding is None and accept is not None and method != "HEAD":
            coding = self._negotiated.get(accept, _MISSING)
            if coding is _MISSING:  # first time this exact value is seen
                coding = self._negotiate(accept)
        if coding is None:
            # Nothing to compress for this client; only Vary may be needed.  The
            # body size may be unknown here (no Content-Length): such responses
            # get Vary too, as a client taking a coding could get them compressed.
            started = False

            async def send_vary(message: Message) -> None:
                nonlocal started
                if not started and message["type"] == "http.response.start":
                    started = True
                    message, eligible, has_vary = _inspect(self, message)
                    if eligible:
                        message = _with_vary(message, has_vary, vary)
                await send(message)

            if recorder is not None:  # it sees the app's identity body
                recorder.send = send_vary
                await self.app(scope, receive, recorder)
            else:
                await self.app(scope, receive, send_vary)
            return
        responder = _Responder(self, coding, send, vary)
        if recorder is not None:
            recorder.send = responder.send
            await self.app(scope, receive, recorder)
        else:
            await self.app(scope, receive, responder.send)
        if responder.pending is not None:
            # The app returned after http.response.start without a body: send what it sent.
            await send(responder.pending)

    def _accepts_dcz(self, accept: bytes) -> bool:
        hit = self._dcz_accepted.get(accept)
        if hit is None:
            # Only an explicit dcz counts: "*" does not offer dictionary support.
            hit = any(token == "dcz" and q > 0 for token, q in parse_qvalues(accept))
            if len(accept) <= _MAX_CACHED_ACCEPT:
                if len(self._dcz_accepted) >= _CACHE_SIZE:
                    self._dcz_accepted.clear()
                self._dcz_accepted[accept] = hit
        return hit

    async def _call_decoding(
        self, scope: Scope, receive: Receive, send: Send, codings: list[str]
    ) -> None:
        # The app sees the decoded body: without the coding and the old length.
        child = dict(scope)
        child["headers"] = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"content-encoding", b"content-length")
        ]
        # The last coding listed was applied last: it comes off first.
        decoding: Receive = receive
        for coding in reversed(codings):
            decoding = _DecodingReceive(decoding, make_decoder(coding), self.max_decompressed_size)
        assert isinstance(decoding, _DecodingReceive)
        guard = _ErrorGuard(send, decoding)
        try:
            await self(child, decoding, guard.send)  # no Content-Encoding now: not decoded twice
        except _BodyError as exc:
            if not guard.started:
                await guard.answer(exc)
            elif not guard.answered:
                raise
        else:
            if decoding.error is not None and not guard.started:
                await guard.answer(decoding.error)


def _inspect(mw: CompressionMiddleware, message: Message) -> tuple[Message, bool, bool]:
    """Whether a response may be compressed, judged from ``http.response.start``.

    Returns the message to forward (a copy without the opt-out header if it
    had one), whether the body is eligible (a compressible status, no
    ``Content-Encoding``, no excluded type, no known size under
    ``minimum_size``) and whether it already has a ``Vary`` header.
    """
    status = message.get("status", 200)
    if status in _SKIP_STATUS or status < 200:
        if status == 304:
            # A 304 stands for the 200 the client holds, whose Vary had
            # Accept-Encoding; caches refresh the stored headers from it
            # (RFC 9110 §15.4.5, RFC 9111 §4.3.4), so it must say so too.
            has_vary = any(
                len(k) == 4 and k.lower() == b"vary" for k, _ in message.get("headers") or ()
            )
            return _with_vary(message, has_vary, _VARY_TOKENS), False, True
        return message, False, False
    raw = message.get("headers") or ()
    content_type: bytes | None = None
    length: bytes | None = None
    eligible = True
    opt_out = False
    vary = False
    for key, value in raw:
        n = len(key)
        if n == 4:
            if key == b"vary" or key.lower() == b"vary":
                vary = True
        elif n == 12:
            if key == b"content-type" or key.lower() == b"content-type":
                content_type = value
        elif n == 14:
            if key == b"content-length" or key.lower() == b"content-length":
                length = value
        elif n == 16:
            if key == b"content-encoding" or key.lower() == b"content-encoding":
                eligible = False
        elif n == 13:
            # The app asks that nobody transforms its bytes (RFC 9111 §5.2.2.6).
            if (key == b"cache-control" or key.lower() == b"cache-control") and (
                b"no-transform" in value.lower()
            ):
                eligible = False
        elif n == 22 and key.lower() == _OPT_OUT:
            opt_out = True
            if value.strip().lower() == b"off":
                eligible = False
    if opt_out:
        message = _without_opt_out(message)
    if not eligible:
        return message, False, vary
    if content_type is not None:
        excluded = mw._excluded_type_cache.get(content_type)
        if excluded is None:
            excluded = mw._exclude_types(content_type)
        if excluded:
            return message, False, vary
    # More digits than minimum_size has: not small, no need to parse.
    if (
        length is not None
        and len(length) <= mw._minimum_digits
        and length.isdigit()
        and int(length) < mw.minimum_size
    ):
        return message, False, vary
    return message, True, vary


# _Responder states
_HEADERS = 0  # waiting for http.response.start
_FIRST = 1  # start held back, waiting for the first body message
_STREAM = 2  # streaming compressed chunks
_PASS = 3  # everything goes out untouched


class _Responder:
    """Per-response state of CompressionMiddleware for a client that takes ``coding``."""

    __slots__ = (
        "_chunk",
        "_mw",
        "_send",
        "_state",
        "_stream",
        "_thread_minimum",
        "_tokens",
        "_vary",
        "coding",
        "pending",
    )

    def __init__(
        self, mw: CompressionMiddleware, coding: Coding, send: Send, tokens: tuple[bytes, ...]
    ) -> None:
        self._mw = mw
        self._tokens = tokens
        self.coding = coding
        self._send = send
        self._state = _HEADERS
        self.pending: Message | None = None
        self._stream: Stream | None = None
        self._vary = False

    async def send(self, message: Message) -> None:
        state = self._state
        if state == _STREAM and message["type"] == "http.response.body":
            # The hot path of a stream (SSE, long polls): compress, flush, send.
            body = message.get("body", b"")
            if message.get("more_body", False) and len(body) < self._thread_minimum:
                if body:
                    out = self._chunk(body)
                    if out:
                        await self._send(
                            {"type": "http.response.body", "body": out, "more_body": True}
                        )
                return
            await self._next_chunk(message)
            return
        if state == _PASS:
            await self._send(message)
            return
        kind = message["type"]
        if kind == "http.response.body":
            if state == _STREAM:
                await self._next_chunk(message)
            elif state == _FIRST:
                await self._first_body(message)
            else:
                await self._send(message)  # body before start: let the server complain
        elif kind == "http.response.start" and state == _HEADERS:
            message, eligible, self._vary = _inspect(self._mw, message)
            if eligible:
                self.pending = message
                self._state = _FIRST
            else:
                self._state = _PASS
                await self._send(message)
        else:
            # pathsend, zerocopysend, trailers, unknown extensions: release the
            # original start untouched and step aside (early hints may precede it).
            start = self.pending
            if start is not None and kind != "http.response.early_hint":
                self.pending = None
                self._state = _PASS
                await self._send(start)
            await self._send(message)

    async def _first_body(self, message: Message) -> None:
        start = self.pending
        assert start is not None
        self.pending = None
        body = message.get("body", b"")
        more = message.get("more_body", False)
        coding = self.coding
        if not more and (not body or len(body) < self._mw.minimum_size):
            self._state = _PASS
            await self._send(start)
            await self._send(message)
            return
        if not more:
            self._state = _PASS
            if len(body) >= self._mw.thread_minimum_size:
                compressed: bytes = await run_in_thread(coding.compress_threaded, bytes(body))
            else:
                compressed = coding.compress(body)
            if len(compressed) >= len(body):
                # Incompressible (already packed, random): the identity body is smaller.
                await self._send(_with_vary(start, self._vary, self._tokens))
                await self._send(message)
                return
            start, headers = _compressed_start(start, coding, self._tokens)
            if not start.get("trailers"):  # with trailers the body goes out chunked
                headers.append((b"content-length", b"%d" % len(compressed)))
            await self._send(start)
            await self._send({"type": "http.response.body", "body": compressed, "more_body": False})
            return
        self._stream = stream = coding.stream()
        self._chunk = stream.chunk
        self._thread_minimum = self._mw.thread_minimum_size
        self._state = _STREAM
        start, _ = _compressed_start(start, coding, self._tokens)
        await self._send(start)
        await self._next_chunk(message)

    async def _next_chunk(self, message: Message) -> None:
        stream = self._stream
        assert stream is not None
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if more:
            if not body:
                return  # nothing to flush; the next chunk or the end will follow
            fn = stream.chunk
        else:
            fn = stream.finish
            self._state = _PASS
            self._stream = None
        if len(body) >= self._mw.thread_minimum_size:
            # Chunks are sequential, so only one thread uses this compressor at a time.
            out: bytes = await run_in_thread(fn, bytes(body))
        else:
            out = fn(body)
        if more and not out:
            return
        await self._send({"type": "http.response.body", "body": out, "more_body": more})


def _without_opt_out(message: Message) -> Message:
    """``message`` without the opt-out header (a copy when it had one)."""
    raw = message.get("headers") or ()
    if not any(len(k) == 22 and k.lower() == _OPT_OUT for k, _ in raw):
        return message
    message = dict(message)
    message["headers"] = [(k, v) for k, v in raw if k.lower() != _OPT_OUT]
    return message


_VARY = (b"vary", b"Accept-Encoding")
_VARY_DICTIONARY = (b"vary", b"Accept-Encoding, Available-Dictionary")


def _with_vary(start: Message, has_vary: bool, tokens: tuple[bytes, ...]) -> Message:
    """A copy of ``start`` with ``tokens`` in Vary (``has_vary``: a Vary exists)."""
    if not has_vary:
        vary = _VARY if tokens is _VARY_TOKENS else _VARY_DICTIONARY
        return {**start, "headers": [*(start.get("headers") or ()), vary]}
    headers = list(start.get("headers") or ())
    MutableHeaders(headers).add_vary(*tokens)
    return {**start, "headers": headers}


_DROPPED = frozenset((b"content-length", b"content-encoding", b"accept-ranges"))


def _compressed_start(
    start: Message, coding: Coding, tokens: tuple[bytes, ...]
) -> tuple[Message, Headers]:
    """A copy of ``start`` with headers rewritten for a compressed body."""
    start = dict(start)
    headers: Headers = []
    append = headers.append
    has_vary = False
    for item in start.get("headers") or ():
        key = item[0]
        n = len(key)  # only names of the lengths below need a look
        if n == 14 or n == 16 or n == 13:
            if key.lower() in _DROPPED:
                # Content-Length changes; byte ranges of the compressed body are not served.
                continue
        elif n == 4:
            lowered = key.lower()
            if lowered == b"etag":
                value = item[1]
                if value[:1] == b'"':
                    item = (key, b"W/" + value)  # a strong validator promises identical bytes
            elif lowered == b"vary":
                has_vary = True
        append(item)
    if has_vary:
        MutableHeaders(headers).add_vary(*tokens)
    else:  # the usual case: no second scan of the headers
        headers.append(_VARY if tokens is _VARY_TOKENS else _VARY_DICTIONARY)
    headers.append((b"content-encoding", coding.token))
    start["headers"] = headers
    return start, headers


async def _no_send(message: Message) -> None:  # pragma: no cover - replaced before use
    raise RuntimeError("send not set")


class _DictionaryRecorder:
    """Marks a response as a dictionary (``Use-As-Dictionary``) and remembers its body.

    Sits between the app and the compressing layer, so it sees the identity
    body.  It keeps a copy of the body (up to ``max_dictionary_size``) while
    passing every chunk on at once; the copy is hashed and stored when the
    response ends.
    """

    __slots__ = ("_config", "_mw", "_parts", "_record", "_size", "_started", "send")

    def __init__(self, mw: CompressionMiddleware, config: Dictionary, record: bool) -> None:
        self._mw = mw
        self._config = config
        #: The next layer's ``send`` (set before the app runs).
        self.send: Send = _no_send
        self._record = record  # GET: remember the body; HEAD: only the header
        self._parts: list[bytes] = []
        self._size = 0
        self._started = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self._started:
            self._started = True
            message = self._start(message)
        elif kind == "http.response.body" and self._record:
            body = message.get("body", b"")
            if body:
                self._size += len(body)
                if self._size > self._mw.max_dictionary_size:
                    self._record = False  # too big to keep: sent, not remembered
                    self._parts = []
                else:
                    self._parts.append(bytes(body))
            if not message.get("more_body", False):
                self._record = False
                content = b"".join(self._parts)
                self._parts = []
                if content:
                    store = self._mw._store
                    assert store is not None
                    store.add(content, self._config)
        elif kind != "http.response.body":
            self._record = False  # pathsend, trailers...: not a body we see whole
        await self.send(message)

    def _start(self, message: Message) -> Message:
        status = message.get("status", 200)
        if status != 200 and status != 304:
            self._record = False
            return message
        has_cache_control = False
        for key, _ in message.get("headers") or ():
            n = len(key)
            if n == 16 and key.lower() == b"content-encoding":
                self._record = False  # not the identity bytes: never a dictionary
                return message
            if n == 13 and key.lower() == b"cache-control":
                has_cache_control = True
        if status == 304:
            self._record = False  # revalidation: the client keeps what it has
        config = self._config
        message, headers = copy_start(message)
        headers.append((b"use-as-dictionary", config.header))
        if config.max_age is not None and not has_cache_control:
            headers.append((b"cache-control", b"max-age=%d" % config.max_age))
        return message


# --------------------------------------------------------------------------- requests


class _BodyError(Exception):
    """A request body the middleware refuses (raised from ``receive``)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(body.decode())
        self.status = status
        self.body = body


class _DecodingReceive:
    """``receive`` that decodes the request body piece by piece, within a size limit."""

    __slots__ = ("_decoder", "_done", "_empty", "_last", "_limit", "_receive", "_total", "error")

    def __init__(self, receive: Receive, decoder: Decoder, limit: int) -> None:
        self._receive = receive
        self._decoder = decoder
        self._limit = limit
        self._total = 0
        self._empty = True  # no encoded byte yet: an empty body decodes to nothing
        self._last = False
        self._done = False
        self.error: _BodyError | None = None

    async def __call__(self) -> Message:
        if self.error is not None:
            raise self.error
        if self._done:
            return await self._receive()
        decoder = self._decoder
        while True:
            if decoder.needs_input() and not self._last:
                try:
                    message = await self._receive()
                except _BodyError as exc:  # an inner coding's decoder refused the body
                    self.error = exc
                    raise
                if message["type"] != "http.request":
                    return message
                self._last = not message.get("more_body", False)
                data = message.get("body", b"")
                if data:
                    self._empty = False
            else:
                data = b""
            try:
                out = decoder.decode(data) if data or not decoder.needs_input() else b""
            except DECODE_ERRORS:
                raise self._fail(400, _BAD_BODY) from None
            self._total += len(out)
            if self._total > self._limit:
                raise self._fail(413, _TOO_LARGE)
            more = not (self._last and decoder.needs_input())
            if not more:
                if not decoder.finished() and not self._empty:
                    raise self._fail(400, _BAD_BODY)  # truncated stream
                self._done = True
            if out or not more:
                return {"type": "http.request", "body": out, "more_body": more}

    def _fail(self, status: int, body: bytes) -> _BodyError:
        self.error = _BodyError(status, body)
        return self.error


class _ErrorGuard:
    """Tracks whether a response started, and replaces the app's response after a body error."""

    __slots__ = ("_decoding", "_send", "answered", "started")

    def __init__(self, send: Send, decoding: _DecodingReceive) -> None:
        self._send = send
        self._decoding = decoding
        self.started = False
        self.answered = False

    async def send(self, message: Message) -> None:
        error = self._decoding.error
        if error is not None and not self.started:
            # The app (or a framework's error handler) answers after our refusal:
            # the client gets the precise 4xx instead of a generic 500.
            await self.answer(error)
            return
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def answer(self, error: _BodyError) -> None:
        self.started = True
        self.answered = True
        await send_response(self._send, error.status, error.body)
