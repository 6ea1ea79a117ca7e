"""ConditionalGetMiddleware: ETags for complete responses and ``304 Not Modified``.

For ``GET`` and ``HEAD``, a complete ``200`` response without an ``ETag``
gets a strong one from a BLAKE2b (or XXH3) hash of its body (weak when the body has a
``Content-Encoding``, since another worker's codec may produce other bytes).
Then ``If-None-Match`` (weak comparison, ``*``, lists) and, only when that
header is absent, ``If-Modified-Since`` against ``Last-Modified`` are
evaluated as RFC 9110 §13.2.2 orders them; a match is answered ``304`` with
the headers a cache needs and no body.

Only the first body message is ever held: a response whose first message
says ``more_body`` is streaming and passes through untouched, as does one
larger than ``max_body_size``.  When the app sets its own ``ETag`` or
``Last-Modified`` the decision is made from ``http.response.start`` alone,
so even a streamed or large response can become a ``304`` without its body
being read.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable, Iterable
from datetime import date
from hashlib import blake2b
from typing import cast

from ._http import PathMatcher, asgi3
from .types import AnyASGIApp, Headers, Message, Receive, Scope, Send

__all__ = ["ConditionalGetMiddleware", "etag_matches", "parse_http_date"]

# --------------------------------------------------------------------------- HTTP dates

_MONTHS = {
    m: i + 1 for i, m in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
}
_DAY = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = rb"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = rb"([0-9]{2}):([0-9]{2}):([0-9]{2})"
# RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete forms recipients must accept.
_IMF_FIXDATE = re.compile(_DAY + rb", ([0-9]{2}) " + _MONTH + rb" ([0-9]{4}) " + _TIME + rb" GMT")
_RFC850 = re.compile(_LONG_DAY + rb", ([0-9]{2})-" + _MONTH + rb"-([0-9]{2}) " + _TIME + rb" GMT")
_ASCTIME = re.compile(_DAY + rb" " + _MONTH + rb" ([ 0-9][0-9]) " + _TIME + rb" ([0-9]{4})")


def parse_http_date(value: bytes | str, now: float | None = None) -> int | None:
    """Seconds since the epoch for an RFC 9110 HTTP-date, or None.

    Accepts exactly IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) and the
    obsolete RFC 850 (``Sunday, 06-Nov-94 08:49:37 GMT``) and asctime
    (``Sun Nov  6 08:49:37 1994``) forms, with surrounding whitespace.
    Anything else (other time zones, missing fields, impossible dates such
    as 31 February or hour 24) is None, never an exception.  A two-digit
    RFC 850 year more than 50 years in the future is read as the most recent
    past year with those digits, as §5.6.7 requires (``now`` defaults to the
    current time).  Leap second 60 is accepted as the grammar allows.
    """
    if isinstance(value, str):
        try:
            value = value.encode("ascii")
        except UnicodeEncodeError:
            return None
    value = value.strip(b" \t")
    if len(value) > 40:  # the longest valid form (RFC 850 with Wednesday) is 37 bytes
        return None
    match = _IMF_FIXDATE.fullmatch(value)
    if match is not None:
        day, month, year, hh, mm, ss = match.groups()
        full_year = int(year)
    else:
        match = _RFC850.fullmatch(value)
        if match is not None:
            day, month, year, hh, mm, ss = match.groups()
            full_year = _rfc850_year(int(year), now)
        else:
            match = _ASCTIME.fullmatch(value)
            if match is None:
                return None
            month, day, hh, mm, ss, year = match.groups()
            if day[:1] == b" ":
                day = day[1:]
            full_year = int(year)
    hour, minute, second = int(hh), int(mm), int(ss)
    if hour > 23 or minute > 59 or second > 60:
        return None
    try:
        date(full_year, _MONTHS[month], int(day))  # rejects 31 Feb, day 00, year 0
    except ValueError:
        return None
    return calendar.timegm((full_year, _MONTHS[month], int(day), hour, minute, second, 0, 0, 0))


def _rfc850_year(two_digits: int, now: float | None) -> int:
    this_year = time.gmtime(now).tm_year
    year = this_year - this_year % 100 + two_digits
    if year > this_year + 50:
        year -= 100
    return year


# --------------------------------------------------------------------------- entity tags

# An entity-tag (RFC 9110 §8.8.3) in a list: [W/]"opaque".  Unquoted items
# (apps that set ETag: abc) are read as they are, so such a tag still matches
# when the client sends it back; anything else is skipped.
_TAG_RE = re.compile(rb'(?:W/)?("[^"]*")|([^\s,"]+)')
# If-None-Match values read: real clients send one or a few tags.
_MAX_TAGS = 64


def _opaque(etag: bytes) -> bytes:
    return etag[2:] if etag[:2] == b"W/" else etag


def etag_matches(if_none_match: bytes, etag: bytes) -> bytes | None:
    """The ``If-None-Match`` item matching ``etag`` by weak comparison, or None.

    ``*`` (alone) matches any current representation.  Weak comparison
    (RFC 9110 §8.8.3.2) ignores the ``W/`` flags and compares the quoted
    opaque tags octet by octet.  Returns the item as the client sent it
    (``W/"x"``), which a ``304`` echoes so the client's stored tag stays as
    it was; for ``*`` it returns ``etag``.  At most 64 items are read;
    garbage yields None, never an exception.
    """
    if if_none_match == etag:  # the usual case: the client sends back what it got
        return etag
    value = if_none_match.strip(b" \t")
    if value == b"*":
        return etag
    opaque = _opaque(etag)
    for count, found in enumerate(_TAG_RE.finditer(value), 1):
        tag = found.group(1) or found.group(2)
        if tag == opaque or (found.group(2) is not None and tag == etag):
            return found.group(0)
        if count >= _MAX_TAGS:
            break
    return None


# --------------------------------------------------------------------------- middleware

_GET_HEAD = frozenset(("GET", "HEAD"))
# Representation metadata a 304 does not carry (RFC 9110 §15.4.5): it describes
# a body the 304 does not have.  Everything else the 200 would have had is kept:
# ETag, Cache-Control, Content-Location, Date, Expires, Vary, Last-Modified,
# Set-Cookie, and the app's own headers.
_DROPPED_304 = frozenset(
    (
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"content-language",
        b"content-range",
        b"content-md5",
        b"content-digest",
        b"repr-digest",
        b"digest",
        b"transfer-encoding",
        b"trailer",
    )
)
# Lengths of the response header names read at http.response.start.
_RESPONSE_NAME_LENGTHS = frozenset((4, 13, 14, 16))


def _blake2b(body: bytes) -> str:
    return blake2b(body, digest_size=16).hexdigest()


def _hasher(name: object) -> Callable[[bytes], str]:
    if not isinstance(name, str):
        raise TypeError(f"etag_hash must be a string, got {name!r}")
    if name == "blake2b":
        return _blake2b
    if name == "xxh3":
        try:
            import xxhash  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ValueError(
                "etag_hash='xxh3' needs the xxhash package (pip install xxhash)"
            ) from None
        return cast(Callable[[bytes], str], xxhash.xxh3_128_hexdigest)
    raise ValueError(f"etag_hash must be 'blake2b' or 'xxh3', got {name!r}")


def _etag_of(hexdigest: Callable[[bytes], str], body: bytes, encoded: bool) -> bytes:
    digest = hexdigest(body).encode("ascii")
    # An encoded body's bytes depend on the codec and its version, which may
    # differ between workers: promise only semantic equivalence then.
    return (b'W/"' if encoded else b'"') + digest + b'"'


class ConditionalGetMiddleware:
    """Add ETags to complete responses and answer conditional GETs with ``304``.

    Args:
        app: The ASGI application to wrap (ASGI 2 apps are adapted).
        max_body_size: Largest body (bytes) hashed for an ``ETag``; larger or
            streamed responses pass through unbuffered.  0 turns generated
            ETags off (app-set validators still give 304s).
        exclude_paths: Paths (exact or ``/prefix/*`` globs) left untouched.
        etag_hash: ``"blake2b"`` (128-bit BLAKE2b, stdlib) or ``"xxh3"``
            (128-bit XXH3, 50-100 times faster, needs the ``xxhash``
            package).  Every worker must use the same one, or their tags
            differ; XXH3 is not collision-resistant against bodies crafted
            to collide.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option is out of range.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        max_body_size: int = 1_048_576,
        exclude_paths: Iterable[str] = (),
        *,
        etag_hash: str = "blake2b",
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {app!r}")
        self.app = asgi3(app)
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int):
            raise TypeError(f"max_body_size must be an int, got {max_body_size!r}")
        if max_body_size < 0:
            raise ValueError(f"max_body_size must be >= 0, got {max_body_size!r}")
        self.max_body_size = max_body_size
        self._hexdigest = _hasher(etag_hash)
        self.etag_hash = etag_hash
        self._max_digits = len(str(max_body_size))
        self._exclude = PathMatcher(exclude_paths, "exclude_paths")
        self.exclude_paths = self._exclude.patterns
        self._has_exclude = bool(self._exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method not in _GET_HEAD and (
            not isinstance(method, str) or method.upper() not in _GET_HEAD
        ):
            # Matched as Django matches them (it upper-cases the method), so
            # every asgi_kit middleware agrees on what a GET is.
            await self.app(scope, receive, send)
            return
        if self._has_exclude and self._exclude(scope["path"]):
            await self.app(scope, receive, send)
            return
        inm: bytes | None = None
        ims: bytes | None = None
        for key, value in scope["headers"]:
            n = len(key)
            if n == 13:
                if key == b"if-none-match" or key.lower() == b"if-none-match":
                    inm = value if inm is None else inm + b", " + value
            elif n == 17 and (key == b"if-modified-since" or key.lower() == b"if-modified-since"):
                ims = value if ims is None else ims
        responder = _Responder(self, send, inm, ims, method.upper() == "HEAD")
        await self.app(scope, receive, responder.send)
        if responder.pending is not None:
            # The app returned after http.response.start without a body.
            await send(responder.pending)


# _Responder states
_START = 0  # waiting for http.response.start
_FIRST = 1  # start held, waiting for the first body message
_PASS = 2  # everything goes out untouched
_DROP = 3  # a 304 went out: the app's body is discarded


class _Responder:
    """Per-response state of ConditionalGetMiddleware."""

    __slots__ = (
        "_head",
        "_ims",
        "_inm",
        "_last_modified",
        "_length",
        "_mw",
        "_send",
        "_state",
        "pending",
    )

    def __init__(
        self,
        mw: ConditionalGetMiddleware,
        send: Send,
        inm: bytes | None,
        ims: bytes | None,
        head: bool,
    ) -> None:
        self._mw = mw
        self._send = send
        self._inm = inm
        self._ims = ims
        self._head = head
        self._state = _START
        self._last_modified: bytes | None = None
        self._length: bytes | None = None
        self.pending: Message | None = None

    async def send(self, message: Message) -> None:
        state = self._state
        if state == _PASS:
            await self._send(message)
            return
        kind = message["type"]
        if state == _FIRST and kind == "http.response.body":
            await self._first_body(message)
        elif state == _START and kind == "http.response.start":
            await self._start(message)
        elif state == _DROP:
            return
        else:
            # Early hints go out before the held start; pathsend, zerocopysend
            # and unknown extensions release it and step aside.
            start = self.pending
            if start is not None and kind != "http.response.early_hint":
                self.pending = None
                self._state = _PASS
                await self._send(start)
            await self._send(message)

    async def _start(self, message: Message) -> None:
        if message.get("status", 200) != 200 or message.get("trailers"):
            self._state = _PASS
            await self._send(message)
            return
        etag: bytes | None = None
        last_modified: bytes | None = None
        length: bytes | None = None
        no_store = False
        for key, value in message.get("headers") or ():
            n = len(key)
            if n not in _RESPONSE_NAME_LENGTHS:
                continue
            if n == 4:
                if key == b"etag" or key.lower() == b"etag":
                    etag = value
            elif n == 13:
                if key == b"last-modified" or key.lower() == b"last-modified":
                    last_modified = value
                elif (key == b"cache-control" or key.lower() == b"cache-control") and (
                    b"no-store" in value.lower()
                ):
                    no_store = True
            elif n == 14 and (key == b"content-length" or key.lower() == b"content-length"):
                length = value
        self._last_modified = last_modified
        if self._inm is None and self._ims is None and etag is not None:
            self._state = _PASS  # the usual first visit to a tagged resource
            await self._send(message)
            return
        mw = self._mw
        if (
            etag is not None
            or no_store
            or mw.max_body_size == 0
            or (
                length is not None
                and (
                    len(length) > mw._max_digits
                    or not length.isdigit()
                    or int(length) > mw.max_body_size
                )
            )
        ):
            # The app's own validators (or none: the body is not ours to tag,
            # too big, or of a length we do not trust) decide now, before any
            # body is read: even a streamed or large response becomes a 304.
            await self._decide(message, etag, generated=False)
            return
        self._length = length
        self.pending = message
        self._state = _FIRST

    async def _first_body(self, message: Message) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if more and not body:
            return  # an empty chunk carries nothing: keep waiting for content
        start = self.pending
        assert start is not None
        self.pending = None
        if (
            more
            or len(body) > self._mw.max_body_size
            # A HEAD answer without its body: the tag of the GET body is unknown.
            or (self._head and not body and self._length != b"0")
        ):
            if not await self._decide(start, None, generated=False):
                await self._send(message)  # streaming or large: pass through
            return
        raw = start.get("headers") or ()
        encoded = any(len(k) == 16 and k.lower() == b"content-encoding" for k, _ in raw)
        etag = _etag_of(self._mw._hexdigest, bytes(body), encoded)
        await self._decide(start, etag, generated=True, body=message)

    async def _decide(
        self,
        start: Message,
        etag: bytes | None,
        *,
        generated: bool,
        body: Message | None = None,
    ) -> bool:
        """Answer 304 when the request's conditions say so (True), else send ``start``.

        RFC 9110 §13.2.2: If-None-Match when present, otherwise
        If-Modified-Since against Last-Modified.  ``etag`` is the response's
        tag (None: it has none); ``generated`` adds it to the headers.
        """
        inm = self._inm
        matched: bytes | None = None
        if inm is not None:
            if etag is None:
                not_modified = _is_star(inm)  # any current representation matches
            else:
                matched = etag_matches(inm, etag)
                not_modified = matched is not None
        else:
            last_modified = self._last_modified
            not_modified = (
                self._ims is not None
                and last_modified is not None
                and _not_modified_since(last_modified, self._ims)
            )
            matched = etag
        if not_modified:
            await self._not_modified(start, matched, generated)
            return True
        self._state = _PASS
        if generated and etag is not None:
            out = dict(start)
            # A list of our own: the app's is untouched.
            out["headers"] = [*(start.get("headers") or ()), (b"etag", etag)]
            start = out
        await self._send(start)
        if body is not None:
            await self._send(body)
        return False

    async def _not_modified(self, start: Message, etag: bytes | None, generated: bool) -> None:
        """Send a 304 built from the 200's start, with ``etag`` as its ETag."""
        self._state = _DROP
        self.pending = None
        headers: Headers = []
        for key, value in start.get("headers") or ():
            lowered = key.lower()
            if lowered in _DROPPED_304:
                continue
            if lowered == b"etag" and etag is not None:
                value = etag  # the matching tag as the client stored it
            headers.append((key, value))
        if generated and etag is not None:
            headers.append((b"etag", etag))
        await self._send({"type": "http.response.start", "status": 304, "headers": headers})
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


def _is_star(if_none_match: bytes) -> bool:
    return if_none_match.strip(b" \t") == b"*"


def _not_modified_since(last_modified: bytes, if_modified_since: bytes) -> bool:
    """True when ``Last-Modified`` is not later than ``If-Modified-Since``; False if unreadable."""
    modified = parse_http_date(last_modified)
    if modified is None:
        return False
    since = parse_http_date(if_modified_since)
    return since is not None and modified <= since
