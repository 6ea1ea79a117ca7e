"""Cookies: read one from the request headers, serialise ``Set-Cookie``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime, formatdate
from typing import Any, Literal

from asgi_kit.types import RawHeaders

from .headers import TOKEN_RE

__all__ = [
    "SameSite",
    "cookie_attributes",
    "delete_cookie_header",
    "get_cookie",
    "iter_cookie_pairs",
    "set_cookie_header",
]

# RFC 6265 §4.1.1 cookie-octet: no CTLs, whitespace, DQUOTE, comma, semicolon, backslash.
_COOKIE_OCTET_RE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


def iter_cookie_pairs(value: str) -> Iterator[tuple[str, str]]:
    """``(name, value)`` pairs of a ``Cookie`` header, tolerating garbage.

    Chunks without ``=`` or without a name are skipped; surrounding double
    quotes are removed.  Pairs come in order (browsers send the cookie with
    the most specific path first).
    """
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


def get_cookie(headers: RawHeaders, name: str) -> str | None:
    """Value of cookie ``name`` from a scope's headers, without building a dict.

    Looks through every ``Cookie`` header (HTTP/2 clients may split them).
    """
    if not name:
        return None  # cookies without a name are skipped, as iter_cookie_pairs does
    marker = name.encode("latin-1", "replace")
    for key, value in headers:
        if len(key) == 6 and (key == b"cookie" or key.lower() == b"cookie") and marker in value:
            # iter_cookie_pairs inlined: only the matching chunk has its value cleaned.
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
    if not name or not TOKEN_RE.fullmatch(name):
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
