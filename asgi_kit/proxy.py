"""ProxyHeadersMiddleware: the real client address and scheme behind trusted proxies.

Only when the direct peer is a trusted proxy are the forwarding headers read,
and only one family of them per request: RFC 7239 ``Forwarded`` *or*
``X-Forwarded-*`` (``mode``; by default ``X-Forwarded-*`` when the request
carries any, else ``Forwarded``).  Combining both would let a client smuggle
values through the family the proxy does not overwrite.

Every address is validated with :mod:`ipaddress`; garbage, ``unknown``,
obfuscated identifiers (``_hidden``) and over-long chains leave
``scope["client"]`` unchanged.  The caller's scope is never modified: a
shallow copy carries the new ``client``, ``scheme`` and headers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

from ._http import _TCHARS as _TOKEN_CHARS
from ._http import asgi3
from ._plumbing.options import check_bool, check_choice, check_positive_int
from .types import AnyASGIApp, Headers, Receive, Scope, Send

__all__ = ["ProxyHeadersMiddleware", "parse_forwarded", "parse_node"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Mode = Literal["auto", "x-forwarded", "forwarded"]

_MODES = ("auto", "x-forwarded", "forwarded")
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_WS_SCHEMES = {"http": "ws", "https": "wss"}
# No valid node (bracketed IPv6 with a zone id and a port) comes close to this.
_MAX_NODE_LENGTH = 100
_PORT_RE = re.compile(r"[0-9]{1,5}")
# RFC 3986 reg-name (restricted to what DNS names use) or an IP literal, with an optional port.
_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)
# RFC 9110 token characters, as str (parameter names in Forwarded).
_TCHARS = frozenset(map(chr, _TOKEN_CHARS))
# RFC 7239 §6.3 obfuscated port: "_" 1*(ALPHA / DIGIT / "." / "_" / "-").
_OBFUSCATED_RE = re.compile(r"_[A-Za-z0-9._-]+")
_XFF = b"x-forwarded-for"
_XFP = b"x-forwarded-proto"
_XFH = b"x-forwarded-host"
_FORWARDED = b"forwarded"


def _parse_port(text: str) -> int | None:
    """A port number, 0 for an RFC 7239 obfuscated port (``_abc``), None if invalid."""
    if text[:1] == "_":
        # The address still counts; only the port is hidden.
        return 0 if _OBFUSCATED_RE.fullmatch(text) else None
    if not _PORT_RE.fullmatch(text):
        return None
    port = int(text)
    return port if 0 < port <= 65535 else None


def parse_node(value: str) -> tuple[IPAddress, int] | None:
    """Parse one forwarded hop: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``.

    Returns the address and port (0 when absent or obfuscated), or None for
    anything that is not a literal IP address: ``unknown``, obfuscated
    identifiers (``_abc``), host names, bad ports, stray characters.
    """
    value = value.strip()
    if not value or len(value) > _MAX_NODE_LENGTH:
        return None
    port = 0
    if value[0] == "[":
        end = value.find("]")
        if end == -1:
            return None
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if rest[0] != ":":
                return None
            parsed_port = _parse_port(rest[1:])
            if parsed_port is None:
                return None
            port = parsed_port
        try:
            return ipaddress.IPv6Address(host), port
        except ValueError:
            return None
    colons = value.count(":")
    if colons == 1:
        host, _, port_text = value.partition(":")
        parsed_port = _parse_port(port_text)
        if parsed_port is None:
            return None
        port = parsed_port
        try:
            return ipaddress.IPv4Address(host), port
        except ValueError:
            return None
    try:
        # Bare IPv4, or bare IPv6 (no port possible without brackets).
        return ipaddress.ip_address(value), 0
    except ValueError:
        return None


def _skip_element(value: str, i: int) -> int:
    """Index of the next top-level comma at or after ``i`` (quotes respected), or len."""
    n = len(value)
    quoted = False
    while i < n:
        c = value[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ",":
            return i
        i += 1
    return n


def parse_forwarded(value: str) -> list[dict[str, str] | None]:
    """Parse an RFC 7239 ``Forwarded`` value into one dict per element, in order.

    Parameter names are lower-cased; quoted-string values are unquoted (with
    ``\\`` escapes).  An element with a syntax error or a repeated parameter
    is returned as None (it cannot be trusted, but its position still counts);
    empty elements are skipped.  Never raises.
    """
    elements: list[dict[str, str] | None] = []
    n = len(value)
    i = 0
    pairs: dict[str, str] | None = {}
    started = False
    while True:
        while i < n and value[i] in " \t":
            i += 1
        if i >= n or value[i] == ",":
            if started:
                elements.append(pairs)
            if i >= n:
                return elements
            i += 1
            pairs, started = {}, False
            continue
        if value[i] == ";":
            i += 1
            continue
        started = True
        j = i
        while j < n and value[j] in _TCHARS:
            j += 1
        name = value[i:j].lower()
        if not name or j >= n or value[j] != "=":
            pairs = None
            i = _skip_element(value, j)
            continue
        j += 1
        if j < n and value[j] == '"':
            buf: list[str] = []
            k = j + 1
            while k < n and value[k] != '"':
                if value[k] == "\\":
                    k += 1
                    if k >= n:
                        break
                buf.append(value[k])
                k += 1
            if k >= n:  # unterminated quoted-string
                pairs = None
                i = n
                continue
            text = "".join(buf)
            i = k + 1
        else:
            # Tolerate unquoted values that RFC 7239 says must be quoted
            # (``for=[::1]:80``): the address is validated strictly afterwards.
            k = j
            while k < n and value[k] not in ',;" \t':
                k += 1
            text = value[j:k]
            i = k
            if not text:
                pairs = None
                i = _skip_element(value, i)
                continue
        if pairs is not None:
            if name in pairs:
                pairs = None  # RFC 7239 §4: a parameter must not occur twice per element
            else:
                pairs[name] = text
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] not in ",;":
            pairs = None
            i = _skip_element(value, i)


# What an IP address or CIDR network looks like, to refuse a mistyped one
# (``300.1.1.1``, ``10.0.0.1/8``) instead of keeping it as a literal that
# can never match.
_IP_LIKE_RE = re.compile(r"\[?(?:[0-9]+(?:\.[0-9]+){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.%]*)\]?")
_NETWORK_LIKE_RE = re.compile(r"[0-9A-Fa-f:.]+/[0-9]*")


class _Trust:
    """Precomputed trust set: addresses, networks, literals, ``*`` and ``unix``.

    The entries mean what they mean in Uvicorn's ``--forwarded-allow-ips``:
    ``"*"`` alone trusts every peer; IP addresses and CIDR networks are
    compared as addresses; anything else (a host name, a Unix socket path
    such as ``/run/app.sock`` or ``unix:///run/app.sock``) is a literal,
    trusted when the peer's or a hop's host is exactly that string.
    """

    def __init__(self, trusted_hosts: str | Iterable[str]) -> None:
        if isinstance(trusted_hosts, str):
            entries = [e.strip() for e in trusted_hosts.split(",") if e.strip()]
        else:
            try:
                entries = list(trusted_hosts)
            except TypeError:
                raise TypeError("trusted_hosts must be a str or an iterable of str") from None
        for entry in entries:
            if not isinstance(entry, str):
                raise TypeError(f"trusted_hosts: {entry!r} is not a str")
        entries = [e.strip() for e in entries if e.strip()]
        # As in Uvicorn, "*" means everyone only on its own; in a list it is a literal.
        self.all = entries == ["*"]
        self.unix = False
        addresses: set[IPAddress] = set()
        networks: list[IPNetwork] = []
        literals: set[str] = set()
        for entry in entries if not self.all else ():
            if entry.lower() == "unix":
                self.unix = True
                literals.add(entry)
            elif _NETWORK_LIKE_RE.fullmatch(entry):
                try:
                    networks.append(ipaddress.ip_network(entry))
                except ValueError as exc:
                    raise ValueError(f"trusted_hosts: {entry!r} is not a network ({exc})") from None
            elif _IP_LIKE_RE.fullmatch(entry):
                try:
                    addresses.add(ipaddress.ip_address(entry.strip("[]")))
                except ValueError:
                    raise ValueError(
                        f"trusted_hosts: {entry!r} looks like an IP address but is not one"
                    ) from None
            else:
                literals.add(entry)
                if entry.startswith(("/", "unix:")):
                    # A Unix socket: servers report its peers without an address.
                    self.unix = True
        self.entries = tuple(entries)
        self.addresses = frozenset(addresses)
        self.networks = tuple(networks)
        self.literals = frozenset(literals)
        self.peer_trusted = lru_cache(maxsize=4096)(self._peer_trusted)

    def address_trusted(self, ip: IPAddress) -> bool:
        if self.all:
            return True
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and self.address_trusted(mapped):
            return True
        if ip in self.addresses:
            return True
        return any(ip in net for net in self.networks)

    def _peer_trusted(self, host: str) -> bool:
        try:
            return self.address_trusted(ipaddress.ip_address(host))
        except ValueError:
            return self.all or host in self.literals


def _host_text(ip: IPAddress) -> str:
    """``str(ip)``, with IPv4-mapped IPv6 in RFC 5952's mixed form on every Python.

    Python 3.13 writes ``::ffff:192.0.2.1``; earlier versions ``::ffff:c000:201``.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        scope_id = f"%{ip.scope_id}" if ip.scope_id else ""
        return f"::ffff:{ip.ipv4_mapped}{scope_id}"
    return str(ip)


class ProxyHeadersMiddleware:
    """Set ``scope["client"]`` and ``scope["scheme"]`` from trusted proxies' headers.

    Args:
        app: The ASGI application to wrap.
        trusted_hosts: Peers whose forwarding headers are believed, spelled
            as for Uvicorn's ``--forwarded-allow-ips``: IP addresses, CIDR
            networks (``"10.0.0.0/8"``, ``"fd00::/8"``), ``"*"`` on its own
            (every peer: only when the app is unreachable except through
            the proxy), and literals (a host name, a Unix socket path such as
            ``"unix:///run/app.sock"`` or ``"/run/app.sock"``) matched
            exactly against the peer's and the hops' host.  A socket path
            or ``"unix"`` also trusts peers on a Unix socket, which servers
            report as ``scope["client"] = None``.  A comma-separated string
            is accepted too.  The same list decides which hops of a
            forwarding chain are skipped as proxies.
        mode: ``"x-forwarded"`` reads ``X-Forwarded-For`` and
            ``X-Forwarded-Proto`` (and ``X-Forwarded-Host``); ``"forwarded"``
            reads RFC 7239 ``Forwarded`` (``for``, ``proto``, ``host``); the
            other family is then ignored, never used as a fallback.
            ``"auto"`` (the default) reads the ``X-Forwarded-*`` family when
            the request carries any ``X-Forwarded-For``/``-Proto``/``-Host``
            header, else ``Forwarded``; the two are never combined.  Behind a
            proxy that sets ``X-Forwarded-For`` on every request, a
            client-sent ``Forwarded`` is therefore never read.  Behind a
            proxy that writes only ``Forwarded``, choose ``"forwarded"``.
        forwarded_host: Also rewrite the request's ``host`` header from
            ``X-Forwarded-Host`` / ``Forwarded: host=`` (validated).
        max_hops: How many hops of a chain are examined, from the right.
            A chain whose hops are all trusted beyond that leaves the client
            unchanged.

    The client is the right-most address of the chain that is not a trusted
    proxy (when every hop is trusted, the left-most one).  A hop that is not
    a literal IP address, an empty ``X-Forwarded-For`` entry included (as
    Uvicorn treats it), stops the walk and leaves the client unchanged.
    The scheme comes from the right-most ``X-Forwarded-Proto`` value or from
    the ``proto`` of the chosen ``Forwarded`` element: ``http``/``https``
    (``ws``/``wss`` for WebSocket scopes).
    """

    def __init__(
        self,
        app: AnyASGIApp,
        trusted_hosts: str | Iterable[str] = ("127.0.0.1",),
        *,
        mode: Mode = "auto",
        forwarded_host: bool = False,
        max_hops: int = 32,
    ) -> None:
        self.app = asgi3(app)
        self._trust = _Trust(trusted_hosts)
        self.trusted_hosts: tuple[str, ...] = self._trust.entries
        self.mode = check_choice("mode", mode, _MODES)
        self.forwarded_host = check_bool("forwarded_host", forwarded_host)
        self.max_hops = check_positive_int("max_hops", max_hops)
        self._node = lru_cache(maxsize=4096)(self._node_uncached)

    def _node_uncached(self, value: str) -> tuple[tuple[str, int], bool] | None:
        parsed = parse_node(value)
        if parsed is None:
            return None
        ip, port = parsed
        return (_host_text(ip), port), self._trust.address_trusted(ip)

    def _peer_is_trusted(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not client:
            # Servers report Unix-socket peers as None.
            return self._trust.unix or self._trust.all
        host = client[0]
        if not host or not isinstance(host, str):
            return self._trust.all
        return self._trust.peer_trusted(host)

    def _pick(self, nodes: list[str]) -> tuple[int, tuple[str, int] | None]:
        """Walk ``nodes`` right to left: (index of the chosen hop, client or None).

        The client is the first untrusted hop; when every examined hop is
        trusted, the left-most one, unless the chain is longer than
        ``max_hops`` (its origin is then unknown).  A hop that is not an IP
        address (garbage, or empty as in ``", , 10.0.0.1"``) ends the walk
        without a client, unless it is a trusted literal; with ``"*"`` the
        left-most hop is the client.
        """
        node = self._node
        trust = self._trust
        if trust.all:
            # Every hop is a trusted proxy: the left-most is the client, as in
            # Uvicorn, whatever the hops in between say.
            if len(nodes) > self.max_hops:
                return len(nodes) - self.max_hops, None
            first = nodes[0]
            info = node(first) if len(first) <= _MAX_NODE_LENGTH else None
            return 0, None if info is None else info[0]
        chosen: tuple[str, int] | None = None
        index = len(nodes) - 1
        limit = max(len(nodes) - self.max_hops, 0)
        literals = trust.literals
        while index >= limit:
            part = nodes[index]
            info = node(part) if len(part) <= _MAX_NODE_LENGTH else None
            if info is None:
                if literals and part.strip() in literals:
                    index -= 1  # a trusted proxy named by a literal
                    continue
                # An empty hop (as Uvicorn treats it) or garbage: not a trusted
                # proxy and no address, so the client cannot be known.
                return index, None
            chosen = info[0]
            if not info[1]:
                return index, chosen
            index -= 1
        if limit > 0:
            return limit, None
        return 0, chosen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if (scope_type != "http" and scope_type != "websocket") or not self._peer_is_trusted(scope):
            await self.app(scope, receive, send)
            return
        mode = self.mode
        if mode == "forwarded":
            client, proto, host = self._from_forwarded(scope["headers"])
        else:
            client, proto, host = self._from_x_forwarded(scope["headers"], mode == "auto")
        scheme = None
        if proto is not None:
            scheme = _SCHEMES.get(proto) or _SCHEMES.get(proto.strip().lower())
            if scheme is not None and scope_type == "websocket":
                scheme = _WS_SCHEMES[scheme]
        if host is not None:
            host = _valid_host(host)
        if client is None and scheme is None and host is None:
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        if client is not None:
            scope["client"] = client
        if scheme is not None:
            scope["scheme"] = scheme
        if host is not None:
            scope["headers"] = _replace_host(scope["headers"], host.encode("ascii"))
        await self.app(scope, receive, send)

    def _from_x_forwarded(
        self, headers: Iterable[tuple[bytes, bytes]], auto: bool = False
    ) -> tuple[tuple[str, int] | None, str | None, str | None]:
        xff: list[bytes] = []
        proto: bytes | None = None
        host: bytes | None = None
        for key, value in headers:
            # All three names start with "x": one integer test skips most headers.
            if not key or key[0] | 0x20 != 0x78:
                continue
            if not key.islower():
                key = key.lower()
            if key == _XFF:
                xff.append(value)
            elif key == _XFP:
                proto = value  # the last header, set by the nearest proxy
            elif key == _XFH:
                host = value
        if auto and not xff and proto is None and host is None:
            # "auto": no X-Forwarded-* header at all, so Forwarded is the only family
            # (a second scan only on this path: behind a proxy, XFF is normally there).
            return self._from_forwarded(headers)
        client = None
        if xff:
            text = (xff[0] if len(xff) == 1 else b",".join(xff)).decode("latin-1")
            if "," not in text and len(text) <= _MAX_NODE_LENGTH:
                info = self._node(text)
                client = None if info is None else info[0]
            else:
                # rsplit bounds the work: at most max_hops + 1 pieces whatever the length.
                client = self._pick(text.rsplit(",", self.max_hops))[1]
        return (
            client,
            None if proto is None else proto.decode("latin-1").rpartition(",")[2],
            None
            if host is None or not self.forwarded_host
            else host.decode("latin-1").rpartition(",")[2],
        )

    def _from_forwarded(
        self, headers: Iterable[tuple[bytes, bytes]]
    ) -> tuple[tuple[str, int] | None, str | None, str | None]:
        values = [
            v for k, v in headers if len(k) == 9 and (k == _FORWARDED or k.lower() == _FORWARDED)
        ]
        if not values:
            return None, None, None
        elements = parse_forwarded(
            (values[0] if len(values) == 1 else b",".join(values)).decode("latin-1")
        )
        if not elements:
            return None, None, None
        fors = ["?" if e is None else e.get("for") or "?" for e in elements]
        index, client = self._pick(fors)
        element = elements[index]
        if element is None:
            return client, None, None
        return client, element.get("proto"), element.get("host") if self.forwarded_host else None


def _valid_host(value: str) -> str | None:
    """``value`` stripped when it is ``name[:port]`` or ``[IPv6][:port]``, else None."""
    value = value.strip()
    if not _HOST_RE.fullmatch(value):
        return None
    if value[0] == "[":
        try:
            ipaddress.IPv6Address(value[1 : value.index("]")])
        except ValueError:
            return None
    port = value.rpartition(":")[2] if value[-1] != "]" and ":" in value else None
    if port is not None and not 0 < int(port) <= 65535:
        return None
    return value


def _replace_host(headers: Iterable[tuple[bytes, bytes]], host: bytes) -> Headers:
    """A new header list whose single ``host`` header is ``host`` (first position kept)."""
    result: Headers = []
    placed = False
    for key, value in headers:
        if len(key) == 4 and (key == b"host" or key.lower() == b"host"):
            if not placed:
                result.append((b"host", host))
                placed = True
            continue
        result.append((key, value))
    if not placed:
        result.append((b"host", host))
    return result
