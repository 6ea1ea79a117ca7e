"""Reading request headers: one pass, case-insensitive, no per-request dict.

ASGI servers send lower-case names, but a header list can come from anywhere
(Django's handler writes ``Content-Type``; a proxy middleware rebuilds the
list), so every comparison here accepts any case on the stored side.  Names
passed *in* are always lower-case bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from asgi_kit.types import RawHeaders

__all__ = [
    "MAX_LIST_ITEMS",
    "TCHARS",
    "TOKEN_BYTES_RE",
    "TOKEN_RE",
    "HeaderScan",
    "header_list",
    "header_value",
    "header_values",
    "normalize_header_name",
    "split_comma_list",
]

#: RFC 9110 §5.6.2 token characters.
TCHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: An RFC 9110 token (text).
TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: An RFC 9110 token (bytes).
TOKEN_BYTES_RE = re.compile(TOKEN_RE.pattern.encode("ascii"))
#: Upper bound on list items read from one client header; real clients send a handful.
MAX_LIST_ITEMS = 64


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


class HeaderScan:
    """Find every request header a middleware reads, in one pass.

    Give the lower-case names once (in the middleware's ``__init__``);
    :meth:`scan` walks a request's header list once and returns
    ``{name: value}`` for the names present, or None when none is, so a
    request carrying none of them allocates nothing.  Header names of other
    lengths are skipped with one set look-up, without lower-casing.

    A name repeated in the request keeps its first value, except names given
    in ``lists``: their values are joined with ``", "`` as RFC 9110 §5.3 says
    a recipient may (``Access-Control-Request-Headers`` split over two
    lines, HTTP/2 ``cookie`` crumbs given as ``lists`` with ``sep=b"; "``).

    Example::

        self._scan = HeaderScan((b"origin", b"host"))
        ...
        found = self._scan.scan(scope["headers"])
        origin = found.get(b"origin") if found else None
    """

    __slots__ = ("_lengths", "_lists", "_sep", "names")

    def __init__(
        self, names: Iterable[bytes], lists: Iterable[bytes] = (), sep: bytes = b", "
    ) -> None:
        self.names: frozenset[bytes] = frozenset(names)
        for name in self.names:
            if not isinstance(name, bytes) or name != name.lower() or not name:
                raise ValueError(f"HeaderScan names must be lower-case bytes, got {name!r}")
        self._lists = frozenset(lists)
        if not self._lists <= self.names:
            raise ValueError("HeaderScan lists must be a subset of its names")
        self._lengths = frozenset(len(n) for n in self.names)
        self._sep = sep

    def scan(self, headers: RawHeaders) -> dict[bytes, bytes] | None:
        """``{name: value}`` for the wanted names present in ``headers``, or None."""
        found: dict[bytes, bytes] | None = None
        lengths = self._lengths
        names = self.names
        for key, value in headers:
            if len(key) in lengths:
                if key not in names:
                    key = key.lower()
                    if key not in names:
                        continue
                if found is None:
                    found = {key: value}
                elif key not in found:
                    found[key] = value
                elif key in self._lists:
                    found[key] = found[key] + self._sep + value
        return found

    def __repr__(self) -> str:
        return f"HeaderScan({sorted(self.names)!r})"


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

    Raises :class:`TypeError` naming ``option`` when ``name`` is neither str
    nor bytes, :class:`ValueError` when it is not an RFC 9110 token.
    """
    if not isinstance(name, (str, bytes)):
        raise TypeError(f"{option} must be a header name (str), got {name!r}")
    raw = name.encode("latin-1", "replace") if isinstance(name, str) else bytes(name)
    if not raw or not all(c in TCHARS for c in raw):
        raise ValueError(f"{option}: {name!r} is not a valid HTTP header name")
    return raw.lower()
