"""Strict parsing of the ``Host`` request header (RFC 9110 §7.2, RFC 3986 §3.2.2).

Shared by :class:`~asgi_kit.security.TrustedHostMiddleware` (which answers a
malformed Host with 400) and :class:`~asgi_kit.security.CSRFMiddleware`
(which needs the request's own origin).  HTTP/2 and HTTP/3 servers map
``:authority`` to the ``host`` header they put in the ASGI scope, so the same
parser covers every protocol.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

__all__ = ["DEFAULT_PORTS", "format_host", "parse_host"]

#: The port a scheme implies when the authority names none.
DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# A DNS name: dot-separated labels of letters, digits, "-" and "_" (which
# real hosts use in service names), each 1..63 characters, with an optional
# trailing dot (a fully qualified name).  RFC 3986's reg-name also allows
# sub-delims and percent-encoding, which no resolvable host name contains.
_NAME_RE = re.compile(
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_\-]{0,61}[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]{0,61}[A-Za-z0-9_])?\.?",
    re.ASCII,
)
_PORT_RE = re.compile(r"[0-9]{1,5}", re.ASCII)
_MAX_HOST = 255 + 6  # a 253-character name, the trailing dot and ":65535"


def parse_host(value: str) -> tuple[str, int | None] | None:
    """Split a ``Host`` value into a normalised host and its port.

    The host is lower-cased without a trailing dot; an IPv6 literal keeps its
    brackets and is written in RFC 5952 form (``[0:0::1]`` becomes
    ``[::1]``).  The port is None when the value names none.  Returns None
    for anything that is not ``host [ ":" port ]``: empty values, user info,
    paths, whitespace inside, zone identifiers, an empty or out-of-range port.
    """
    if not value or len(value) > _MAX_HOST:
        return None
    port: int | None = None
    if value[0] == "[":
        end = value.find("]")
        if end < 0:
            return None
        literal, rest = value[1:end], value[end + 1 :]
        try:
            address = ipaddress.IPv6Address(literal)
        except ValueError:
            return None
        if address.scope_id is not None:
            return None
        host = f"[{address.compressed}]"
        if rest:
            if rest[0] != ":":
                return None
            port = _port(rest[1:])
            if port is None:
                return None
        return host, port
    host, colon, port_text = value.partition(":")
    if colon:
        port = _port(port_text)
        if port is None:
            return None
    if len(host) > 254 or _NAME_RE.fullmatch(host) is None:
        return None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    return host, port


def _port(text: str) -> int | None:
    if _PORT_RE.fullmatch(text) is None:
        return None
    port = int(text)
    return port if port <= 65535 else None


def format_host(host: str, port: int | None, scheme: str) -> str:
    """``host`` with ``:port`` unless the port is the scheme's default."""
    if port is None or DEFAULT_PORTS.get(scheme) == port:
        return host
    return f"{host}:{port}"
