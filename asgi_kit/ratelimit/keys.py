"""Key functions: which client a request is counted against.

A key function takes the ASGI scope and returns a string (the bucket the
request is counted in) or None (the request is not limited by that rule).  It
may be a plain function or a coroutine function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgi_kit._http import header_value, normalize_header_name
from asgi_kit.types import Scope

__all__ = ["KeyFunc", "client_ip", "header"]

#: A key function: ``(scope) -> str | None``, sync or async.
KeyFunc = Callable[[Scope], "str | Awaitable[str | None] | None"]


def client_ip(scope: Scope) -> str | None:
    """The client address from ``scope["client"]`` (None for unix sockets).

    Behind a reverse proxy every request comes from the proxy's address: put
    ``ProxyHeadersMiddleware`` (with the proxy's address trusted) *outside*
    the rate limiter so ``scope["client"]`` is the real, validated client.
    Never key on a raw ``X-Forwarded-For`` header: clients can forge it.
    """
    # Same result as _http.client_host, inlined: this runs on every request.
    client = scope.get("client")
    if client:
        host = client[0]
        if type(host) is str and host:
            return host
    return None


def header(name: str) -> Callable[[Scope], str | None]:
    """A key function reading request header ``name`` (case-insensitive).

    Requests without the header (or with an empty value) are not limited by
    the rule using this key, so combine it with a ``client_ip`` rule when
    anonymous clients must be limited too::

        Rule("1000/hour", key=header("X-API-Key"))

    Raises :class:`ValueError` when ``name`` is not a valid header name.
    """
    raw = normalize_header_name(name, "header")

    def key(scope: Scope) -> str | None:
        value = header_value(scope["headers"], raw)
        if not value:
            return None
        return value.decode("latin-1")

    key.__qualname__ = key.__name__ = f"header({name!r})"
    return key
