"""Schemes, default ports, ``Host`` parsing and the client address, defined once."""

from __future__ import annotations

from asgi_kit.types import Scope

__all__ = [
    "DEFAULT_PORTS",
    "client_host",
    "default_port",
    "scope_scheme",
    "server_address",
    "split_host",
]

#: The port a URL of each scheme means when it names none.
DEFAULT_PORTS: dict[str, int] = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def default_port(scheme: str) -> int | None:
    """The default port of ``scheme`` (``http``, ``https``, ``ws``, ``wss``), or None."""
    return DEFAULT_PORTS.get(scheme)


def split_host(host: str) -> tuple[str, int | None]:
    """Split a ``Host`` value (or an origin's authority) into host and port.

    IPv6 literals keep no brackets (``[::1]:8000`` -> ``("::1", 8000)``);
    the port is None when absent or not a valid port (0-65535).  Never raises.
    """
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return host, None
        address, rest = host[1:end], host[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        address, sep, port_text = host.rpartition(":")
        if not sep:
            return host, None
    if port_text.isdigit() and port_text.isascii() and len(port_text) <= 5:
        port = int(port_text)
        if port <= 65535:
            return address, port
    return address, None


def scope_scheme(scope: Scope) -> str:
    """``scope["scheme"]``, defaulting to ``http``/``ws`` as the ASGI spec says."""
    scheme = scope.get("scheme")
    if scheme:
        return str(scheme)
    return "ws" if scope.get("type") == "websocket" else "http"


def server_address(scope: Scope, host: bytes | None) -> tuple[str, int | None]:
    """The host and port the client asked for: ``Host`` first, then ``scope["server"]``.

    ``host`` is the request's ``Host`` header value (None when absent).  A
    ``Host`` without a port means the scheme's default port.  Returns
    ``("", None)`` when neither source names a host.
    """
    if host:
        address, port = split_host(host.decode("latin-1").strip())
        if address:
            return address, port if port is not None else default_port(scope_scheme(scope))
    server = scope.get("server")
    if server and server[0]:
        return str(server[0]), server[1]
    return "", None


def client_host(scope: Scope) -> str | None:
    """The client's address from ``scope["client"]``, or None (e.g. unix sockets)."""
    client = scope.get("client")
    if client:
        host = client[0]
        return host if isinstance(host, str) and host else None
    return None
