"""Shared HTTP/ASGI helpers used by every asgi_kit middleware.

Everything here is written once and reused: raw header access (case-insensitive,
without building per-request dicts), a mutable view over a message's header
list, cookie parsing and ``Set-Cookie`` serialisation, q-value lists
(RFC 9110 §12.4.2), path matching for ``exclude_paths``-style options, client
address and scheme from the scope, and small canned responses.

Parsers of client input never raise on hostile input: they skip what they
cannot read.  Builders of output (``Set-Cookie``, option validation) raise
:class:`ValueError` naming what is wrong.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from email.utils import format_datetime, formatdate
from typing import Any, Literal, cast

from asgiref.compatibility import guarantee_single_callable

from ._routes import ROUTE_KEY, route_template
from .types import AnyASGIApp, ASGIApp, Headers, Message, RawHeaders, Receive, Scope, Send

__all__ = [
    "ROUTE_KEY",
    "MutableHeaders",
    "PathMatcher",
    "asgi3",
    "client_host",
    "cookie_attributes",
    "copy_start",
    "delete_cookie_header",
    "get_cookie",
    "header_list",
    "header_value",
    "header_values",
    "normalize_header_name",
    "parse_cookies",
    "parse_qvalues",
    "refuse_websocket",
    "route_template",
    "scope_scheme",
    "send_json",
    "send_response",
    "set_cookie_header",
    "split_comma_list",
]

# RFC 9110 §5.6.2 token characters.
_TCHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_BYTES_RE = re.compile(_TOKEN_RE.pattern.encode("ascii"))
# RFC 6265 §4.1.1 cookie-octet: no CTLs, whitespace, DQUOTE, comma, semicolon, backslash.
_COOKIE_OCTET_RE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# Upper bound on list items read from one client header; real clients send a handful.
MAX_LIST_ITEMS = 64


def asgi3(app: AnyASGIApp) -> ASGIApp:
    """Return ``app`` as an ASGI 3 single callable (ASGI 2 apps are adapted)."""
    return cast(ASGIApp, guarantee_single_callable(app))  # type: ignore[no-untyped-call]


# --------------------------------------------------------------------------- headers


def header_value(headers: RawHeaders, name: bytes) -> bytes | None:
    """First value of header ``name`` (lower-case bytes), matched case-insensitively."""
    n = len(name)
    for key, value in headers:
        if len(key) == n and (key == name or key.lower() == name):
            return value
    return None


def header_values(headers: RawHeaders, name: bytes) -> list[bytes]:
    """Every value of header ``name`` (lower-case bytes), in order."""
    n = len(name)
    return [v for k, v in headers if len(k) == n and (k == name or k.lower() == name)]


def header_list(headers: RawHeaders, name: bytes) -> bytes | None:
    """Values of a list-valued header joined with ``", "`` (RFC 9110 §5.3), or None."""
    values = header_values(headers, name)
    if not values:
        return None
    return values[0] if len(values) == 1 else b", ".join(values)


def split_comma_list(value: str | bytes, max_items: int = MAX_LIST_ITEMS) -> list[str]:
    """Split a comma-separated header value into stripped, non-empty items.

    Bytes are decoded as latin-1 (never fails).  At most ``max_items`` items are
    returned, so a hostile header cannot make the caller loop without bound.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    items: list[str] = []
    for part in value.split(",", max_items):
        part = part.strip()
        if part:
            items.append(part)
            if len(items) >= max_items:
                break
    return items


def normalize_header_name(name: str | bytes, option: str) -> bytes:
    """Validate a configured header name and return it as lower-case bytes.

    Raises :class:`ValueError` naming ``option`` when ``name`` is not an
    RFC 9110 token.
    """
    raw = name.encode("latin-1", "replace") if isinstance(name, str) else bytes(name)
    if not raw or not all(c in _TCHARS for c in raw):
        raise ValueError(f"{option}: {name!r} is not a valid HTTP header name")
    return raw.lower()


def copy_start(message: Message) -> tuple[Message, Headers]:
    """A shallow copy of a start message with a header list of its own.

    The app owns ``message`` and its ``headers``: both may be constants
    reused on every response.  This costs one dict copy and one list copy,
    and is the only way asgi_kit edits a response's headers.
    """
    headers = message.get("headers")
    raw: Headers
    if type(headers) is list:
        raw = list(headers)
    else:
        raw = [(bytes(k), bytes(v)) for k, v in (headers or ())]
    copied = dict(message)
    copied["headers"] = raw
    return copied, raw


class MutableHeaders:
    """A mutable, case-insensitive view over a raw ASGI header list.

    Wrap a list the middleware owns: :meth:`copy_of` copies an app's start
    message first, so the app's own list and dict are never changed.  Names
    passed in must be lower-case bytes; existing names in the list may be in
    any case (Django sends ``Content-Type``) and are matched
    case-insensitively.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: Headers) -> None:
        self.raw = raw

    @classmethod
    def copy_of(cls, message: Message) -> tuple[Message, MutableHeaders]:
        """A copy of ``message`` with its own header list, and a view over that list.

        Copy-on-write: the app may send one module-level start message or
        header list on every response, so editing either in place would
        carry one response's headers (a session cookie, an allowed origin)
        into every later response.  Send the returned message instead.
        """
        copied, raw = copy_start(message)
        return copied, cls(raw)

    def get(self, name: bytes) -> bytes | None:
        """First value of ``name``, or None."""
        return header_value(self.raw, name)

    def get_all(self, name: bytes) -> list[bytes]:
        """Every value of ``name``."""
        return header_values(self.raw, name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, bytes) and header_value(self.raw, name) is not None

    def add(self, name: bytes, value: bytes) -> None:
        """Append a header, keeping existing ones with the same name."""
        self.raw.append((name, value))

    def set(self, name: bytes, value: bytes) -> None:
        """Replace every ``name`` header with a single one."""
        self.remove(name)
        self.raw.append((name, value))

    def setdefault(self, name: bytes, value: bytes) -> bytes:
        """Add ``name: value`` unless ``name`` is present; return the value in force."""
        current = header_value(self.raw, name)
        if current is None:
            self.raw.append((name, value))
            return value
        return current

    def remove(self, name: bytes) -> bool:
        """Remove every ``name`` header; return whether any was present."""
        n = len(name)
        raw = self.raw
        kept = [(k, v) for k, v in raw if not (len(k) == n and (k == name or k.lower() == name))]
        if len(kept) == len(raw):
            return False
        raw[:] = kept
        return True

    def add_vary(self, *tokens: bytes) -> None:
        """Merge ``tokens`` into ``Vary`` without duplicates (``*`` absorbs all).

        Several ``Vary`` headers are folded into one; a single one is
        rewritten in place (no list rebuild: this runs on every response of
        a stack where several middleware vary on something).
        """
        raw = self.raw
        first = -1
        found: list[int] | None = None  # indexes of further Vary headers, rarely any
        for i, (k, _) in enumerate(raw):
            if len(k) == 4 and (k == b"vary" or k.lower() == b"vary"):
                if first < 0:
                    first = i
                elif found is None:
                    found = [i]
                else:
                    found.append(i)
        if first < 0:
            raw.append((b"vary", b", ".join(tokens)))
            return
        joined = raw[first][1]
        if found is not None:
            joined = b", ".join([joined, *[raw[i][1] for i in found]])
        current = [s for t in joined.split(b",") if (s := t.strip())]
        lowered = {t.lower() for t in current}
        if b"*" in lowered:
            return
        missing = [t for t in tokens if t.lower() not in lowered]
        if not missing and found is None:
            return
        raw[first] = (b"vary", b", ".join(current + missing))
        if found is not None:
            for i in reversed(found):
                del raw[i]

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __repr__(self) -> str:
        return f"MutableHeaders({self.raw!r})"


# --------------------------------------------------------------------------- q-values


def _parse_qvalue(text: str) -> float | None:
    """Parse an RFC 9110 §12.4.2 qvalue; None when it is not one."""
    n = len(text)
    if n == 0 or n > 5:
        return None
    if text[0] == "1":
        if n == 1 or (text[1] == "." and text[2:].strip("0") == ""):
            return 1.0
        return None
    if text[0] == "0":
        if n == 1:
            return 0.0
        if text[1] == "." and text[2:].isdigit() and text[2:].isascii():
            return float(text)
        if n == 2 and text[1] == ".":
            return 0.0
    return None


def parse_qvalues(value: str | bytes, max_items: int = MAX_LIST_ITEMS) -> list[tuple[str, float]]:
    """Parse an ``Accept``-style list into ``(token, q)`` pairs, in order.

    Tokens are lower-cased; a missing ``q`` is 1.0.  Items that are not valid
    (empty, not a token or media range, malformed ``q``) are skipped rather
    than failing the whole header, so hostile input yields a shorter list and
    never an exception.  At most ``max_items`` items are read.
    """
    result: list[tuple[str, float]] = []
    for item in split_comma_list(value, max_items):
        token, _, params = item.partition(";")
        token = token.strip().lower()
        if not token or not _TOKEN_RE.fullmatch(token.replace("/", "", 1)):
            continue
        q = 1.0
        if params:
            for param in params.split(";"):
                pname, eq, pvalue = param.partition("=")
                if pname.strip().lower() == "q":
                    parsed = _parse_qvalue(pvalue.strip()) if eq else None
                    if parsed is None:
                        break
                    q = parsed
            else:
                result.append((token, q))
            continue
        result.append((token, q))
    return result


# --------------------------------------------------------------------------- cookies


def _iter_cookie_pairs(value: str) -> Iterator[tuple[str, str]]:
    for chunk in value.split(";"):
        name, eq, val = chunk.partition("=")
        if not eq:
            continue
        name = name.strip()
        if not name:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1]
        yield name, val


def parse_cookies(value: str | bytes) -> dict[str, str]:
    """Parse a ``Cookie`` header into a dict, tolerating garbage.

    Chunks without ``=`` or without a name are skipped; surrounding double
    quotes are removed.  When a name repeats the first occurrence wins
    (browsers send the cookie with the most specific path first).
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    cookies: dict[str, str] = {}
    for name, val in _iter_cookie_pairs(value):
        cookies.setdefault(name, val)
    return cookies


def get_cookie(headers: RawHeaders, name: str) -> str | None:
    """Value of cookie ``name`` from a scope's headers, without building a dict.

    Looks through every ``Cookie`` header (HTTP/2 clients may split them).
    """
    if not name:
        return None  # cookies without a name are skipped, as parse_cookies does
    marker = name.encode("latin-1", "replace")
    for key, value in headers:
        if len(key) == 6 and (key == b"cookie" or key.lower() == b"cookie") and marker in value:
            # _iter_cookie_pairs inlined: only the matching chunk has its value cleaned.
            for chunk in value.decode("latin-1").split(";"):
                cname, eq, val = chunk.partition("=")
                if eq and cname.strip() == name:
                    val = val.strip()
                    if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                        val = val[1:-1]
                    return val
    return None


SameSite = Literal["lax", "strict", "none"]
_SAMESITE = {"lax": b"Lax", "strict": b"Strict", "none": b"None"}


def cookie_attributes(
    *,
    max_age: int | None = None,
    expires: datetime | float | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: str | None = "lax",
    partitioned: bool = False,
) -> bytes:
    """Serialise ``Set-Cookie`` attributes (everything after ``name=value``).

    Precompute this once per middleware when the attributes do not change per
    response.  ``samesite="none"`` and ``partitioned`` imply ``Secure`` as
    browsers require.  Raises :class:`ValueError` for invalid attributes.
    """
    parts: list[bytes] = []
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, int):
            raise ValueError(f"max_age must be an int or None, got {max_age!r}")
        parts.append(b"Max-Age=%d" % max_age)
    if expires is not None:
        if isinstance(expires, datetime):
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=timezone.utc)
            text = format_datetime(expires.astimezone(timezone.utc), usegmt=True)
        else:
            text = formatdate(float(expires), usegmt=True)
        parts.append(b"Expires=" + text.encode("ascii"))
    for label, attr in (("path", path), ("domain", domain)):
        if attr is not None:
            if not attr or any(c in attr for c in ";\r\n\x00") or not attr.isascii():
                raise ValueError(f"{label}: {attr!r} is not a valid cookie {label}")
            parts.append(label.capitalize().encode() + b"=" + attr.encode("ascii"))
    site: bytes | None = None
    if samesite is not None:
        site = _SAMESITE.get(samesite.lower())
        if site is None:
            raise ValueError(f"same_site must be 'lax', 'strict' or 'none', got {samesite!r}")
    if secure or site == b"None" or partitioned:
        parts.append(b"Secure")
    if httponly:
        parts.append(b"HttpOnly")
    if site is not None:
        parts.append(b"SameSite=" + site)
    if partitioned:
        parts.append(b"Partitioned")
    return b"; ".join(parts)


def set_cookie_header(name: str, value: str, attributes: bytes = b"", /, **attrs: Any) -> bytes:
    """Build a ``Set-Cookie`` header value.

    Pass precomputed ``attributes`` from :func:`cookie_attributes`, or the
    same keyword arguments it takes.  Raises :class:`ValueError` when ``name``
    is not a token or ``value`` has characters a cookie may not carry.
    """
    if not name or not _TOKEN_RE.fullmatch(name):
        raise ValueError(f"cookie name {name!r} is not a valid token")
    if not _COOKIE_OCTET_RE.fullmatch(value):
        raise ValueError(f"cookie value for {name!r} has characters a cookie may not carry")
    if attrs:
        attributes = cookie_attributes(**attrs)
    head = name.encode("ascii") + b"=" + value.encode("ascii")
    return head + b"; " + attributes if attributes else head


def delete_cookie_header(name: str, attributes: bytes = b"", /, **attrs: Any) -> bytes:
    """A ``Set-Cookie`` value that makes the browser drop cookie ``name``.

    ``attributes`` (or ``attrs``) must carry the same Path and Domain the
    cookie was set with; Max-Age and Expires are added here.
    """
    if attrs:
        attrs.pop("max_age", None)
        attrs.pop("expires", None)
        attributes = cookie_attributes(**attrs)
    expiry = b"Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    return set_cookie_header(name, "", expiry + (b"; " + attributes if attributes else b""))


# --------------------------------------------------------------------------- paths


class PathMatcher:
    """Matches request paths against exact paths and glob patterns.

    A pattern without wildcards matches that path exactly; ``/prefix/*``
    matches everything under ``/prefix/``; any other pattern uses
    :func:`fnmatch.fnmatchcase` rules (``*`` also matches ``/``).
    Everything is compiled once; a call is a set look-up, a ``startswith``
    and at most one regex match.
    """

    __slots__ = ("_exact", "_prefixes", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str], option: str = "paths") -> None:
        if isinstance(patterns, str):
            raise TypeError(f"{option} must be a list of paths, not a single string")
        try:
            self.patterns: tuple[str, ...] = tuple(patterns)
        except TypeError:
            kind = type(patterns).__name__
            raise TypeError(f"{option} must be a list of paths, got {kind}") from None
        exact: set[str] = set()
        prefixes: list[str] = []
        globs: list[str] = []
        for pattern in self.patterns:
            if not isinstance(pattern, str) or not pattern.startswith(("/", "*")):
                raise ValueError(f"{option}: {pattern!r} must be a path starting with '/'")
            head = pattern[:-1]
            if not any(c in pattern for c in "*?["):
                exact.add(pattern)
            elif pattern.endswith("*") and not any(c in head for c in "*?["):
                prefixes.append(head)
            else:
                globs.append(fnmatch.translate(pattern))
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._regex = re.compile("|".join(globs)) if globs else None

    def __call__(self, path: str) -> bool:
        if path in self._exact:
            return True
        if self._prefixes and path.startswith(self._prefixes):
            return True
        return self._regex is not None and self._regex.match(path) is not None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"PathMatcher({list(self.patterns)!r})"


# --------------------------------------------------------------------------- scope


def client_host(scope: Scope) -> str | None:
    """The client's address from ``scope["client"]``, or None (e.g. unix sockets)."""
    client = scope.get("client")
    if client:
        host = client[0]
        return host if isinstance(host, str) and host else None
    return None


def scope_scheme(scope: Scope) -> str:
    """``scope["scheme"]``, defaulting to ``http``/``ws`` as the ASGI spec says."""
    scheme = scope.get("scheme")
    if scheme:
        return str(scheme)
    return "ws" if scope.get("type") == "websocket" else "http"


# --------------------------------------------------------------------------- responses

TEXT_PLAIN = b"text/plain; charset=utf-8"
APPLICATION_JSON = b"application/json"


async def send_response(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: bytes | None = TEXT_PLAIN,
    headers: RawHeaders = (),
) -> None:
    """Send a complete small HTTP response (start + one body message)."""
    raw: Headers = [(b"content-length", str(len(body)).encode("ascii"))]
    if content_type is not None:
        raw.append((b"content-type", content_type))
    raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, data: Any, headers: RawHeaders = ()) -> None:
    """Send ``data`` as a compact JSON response."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    await send_response(send, status, body, APPLICATION_JSON, headers)


async def refuse_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int = 403,
    body: bytes = b"",
    headers: RawHeaders = (),
    close_code: int = 1008,
) -> None:
    """Refuse a WebSocket handshake before it is accepted.

    Where the server supports the ``websocket.http.response`` extension the
    client gets a real HTTP ``status`` response; elsewhere the handshake is
    closed with ``close_code`` (servers answer that with HTTP 403).
    """
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        raw: Headers = [(b"content-length", str(len(body)).encode("ascii"))]
        if body:
            raw.append((b"content-type", TEXT_PLAIN))
        raw.extend(headers)
        await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
    else:
        await send({"type": "websocket.close", "code": close_code})
