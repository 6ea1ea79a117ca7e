"""TrustedHostMiddleware: answer only for the host names you serve (Host header attacks).

Starlette's parameters and semantics (``allowed_hosts``, ``*.example.com``,
``www_redirect``), with the ``Host`` header parsed strictly (RFC 9110 §7.2,
RFC 3986 §3.2.2): IPv6 literals in brackets, ports matched when a pattern
names one, and malformed, missing or repeated Host headers answered with 400.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

from asgi_kit._http import PathMatcher, asgi3, refuse_websocket, scope_scheme, send_response
from asgi_kit.types import AnyASGIApp, Receive, Scope, Send

from ._host import DEFAULT_PORTS, format_host, parse_host

__all__ = ["TrustedHostMiddleware"]

_INVALID: Final = b"Invalid host header"
_CACHE_SIZE: Final = 1024
_MAX_CACHED: Final = 300
# Decisions: pass, refuse, or redirect to www.
_PASS: Final = 0
_REFUSE: Final = 1
_REDIRECT: Final = 2


class TrustedHostMiddleware:
    """Refuse requests whose ``Host`` is not one of ``allowed_hosts`` with 400.

    A drop-in for Starlette's ``TrustedHostMiddleware`` (same parameters,
    same order, same 400 body ``Invalid host header``), with a strict
    ``Host`` parser:

    * Patterns: ``"example.com"``, ``"*.example.com"`` (every subdomain, not
      the bare domain), ``"*"`` (everything; the default), an IPv4 address,
      a bracketed IPv6 literal (``"[::1]"``), each optionally with a port
      (``"example.com:8443"``, ``"[::1]:8000"``).  A pattern without a port
      matches any port; one with a port matches only it (the scheme's
      default port when the Host names none).  Case and a trailing dot
      (``example.com.``) do not matter.
    * A request without ``Host`` (HTTP/1.0 clients: every client since 1997
      sends it; HTTP/2's ``:authority`` reaches ASGI as ``host``), with more
      than one, or with one that is not ``host[:port]`` gets 400.  With
      ``"*"`` nothing is checked, as in Starlette.
    * ``www_redirect``: a request for ``example.com`` when only
      ``www.example.com`` is allowed is redirected (307) there, keeping the
      scheme, port, path and query.
    * WebSocket handshakes are checked the same way and refused with 400.

    Args:
        app: The ASGI application to wrap.
        allowed_hosts: Host patterns (see above); None means ``["*"]``.
        www_redirect: Redirect the bare domain to its ``www.`` host when only
            that is allowed.
        exclude_paths: Paths (exact or ``/prefix/*``) answered whatever the
            Host, e.g. a health check probed by IP address.

    Raises:
        ValueError: A pattern is malformed (the message names it).
        TypeError: An option has the wrong type.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        allowed_hosts: Iterable[str] | None = ("*",),
        www_redirect: bool = True,
        *,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {app!r}")
        self.app = asgi3(app)
        if allowed_hosts is None:
            allowed_hosts = ("*",)
        if isinstance(allowed_hosts, str):
            raise TypeError("allowed_hosts must be a list of host patterns, not a single string")
        if not isinstance(allowed_hosts, Iterable):
            raise TypeError(f"allowed_hosts must be a list of host patterns, got {allowed_hosts!r}")
        if not isinstance(www_redirect, bool):
            raise TypeError(f"www_redirect must be a bool, got {www_redirect!r}")
        patterns = list(allowed_hosts)
        if not patterns:
            raise ValueError("allowed_hosts: give at least one pattern ('*' allows every host)")
        #: The patterns, lower-cased (as Starlette exposes them).
        self.allowed_hosts: list[str] = []
        self.allow_any = False
        self.www_redirect = www_redirect
        self.exclude_paths = PathMatcher(exclude_paths, "exclude_paths")
        # host -> ports it may use (None: any port)
        exact: dict[str, set[int] | None] = {}
        wildcards: list[tuple[str, int | None]] = []
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"allowed_hosts must contain strings, got {pattern!r}")
            self.allowed_hosts.append(pattern.lower())
            if pattern == "*":
                self.allow_any = True
                continue
            wildcard = pattern.startswith("*.")
            body = pattern[2:] if wildcard else pattern
            parsed = parse_host(body) if "*" not in body else None
            if parsed is None or (wildcard and body.startswith("[")):
                hint = ""
                if "*" in pattern:
                    hint = " (a wildcard must be the first label: '*.example.com')"
                elif "://" in pattern or "/" in pattern:
                    hint = " (a host name only, no scheme or path)"
                elif not pattern.isascii():
                    hint = " (write international domain names in punycode)"
                elif pattern.count(":") > 1 and not pattern.startswith("["):
                    hint = " (write IPv6 addresses in brackets: '[::1]')"
                raise ValueError(f"allowed_hosts: {pattern!r} is not a host pattern{hint}")
            host, port = parsed
            if wildcard:
                wildcards.append(("." + host, port))
            elif port is None:
                exact[host] = None
            else:
                ports = exact.setdefault(host, set())
                if ports is not None:
                    ports.add(port)
        self._exact = exact
        self._wildcards = tuple(wildcards)
        # Host value -> decision, one cache per scheme (the default port differs).
        self._caches: dict[str, dict[bytes, tuple[int, str]]] = {}

    def host_allowed(self, host: str, port: int | None, scheme: str = "http") -> bool:
        """Whether a parsed Host (as :func:`parse_host` returns it) is allowed."""
        if self.allow_any:
            return True
        effective = port if port is not None else DEFAULT_PORTS.get(scheme)
        if host in self._exact:
            ports = self._exact[host]
            if ports is None or effective in ports:
                return True
        for suffix, p_port in self._wildcards:
            if host.endswith(suffix) and (p_port is None or p_port == effective):
                return True
        return False

    def _decide(self, raw: bytes, scheme: str) -> tuple[int, str]:
        parsed = parse_host(raw.decode("latin-1").strip(" \t"))
        if parsed is None:
            return _REFUSE, ""
        host, port = parsed
        if self.host_allowed(host, port, scheme):
            return _PASS, ""
        if (
            self.www_redirect
            and not host.startswith("[")
            and self.host_allowed("www." + host, port, scheme)
        ):
            return _REDIRECT, format_host("www." + host, port, scheme)
        return _REFUSE, ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if (
            self.allow_any
            or (scope_type != "http" and scope_type != "websocket")
            or (self.exclude_paths and self.exclude_paths(scope["path"]))
        ):
            await self.app(scope, receive, send)
            return
        raw: bytes | None = None
        for key, value in scope["headers"]:
            if len(key) == 4 and (key == b"host" or key.lower() == b"host"):
                if raw is not None:
                    raw = None  # RFC 9112 §3.2: more than one Host is a 400
                    break
                raw = value
        else:
            if raw is not None:
                scheme = scope.get("scheme") or scope_scheme(scope)
                cache = self._caches.get(scheme)
                if cache is None:
                    cache = self._caches.setdefault(scheme, {}) if len(self._caches) < 8 else {}
                decision = cache.get(raw)
                if decision is None:
                    decision = self._decide(raw, scheme)
                    if len(raw) <= _MAX_CACHED:
                        if len(cache) >= _CACHE_SIZE:
                            with contextlib.suppress(StopIteration, KeyError):
                                del cache[next(iter(cache))]
                        cache[raw] = decision
                if decision[0] == _PASS:
                    await self.app(scope, receive, send)
                    return
                if decision[0] == _REDIRECT:
                    await self._redirect(scope, receive, send, decision[1])
                    return
        if scope_type == "websocket":
            await refuse_websocket(scope, receive, send, 400, _INVALID)
        else:
            await send_response(send, 400, _INVALID)

    async def _redirect(self, scope: Scope, receive: Receive, send: Send, netloc: str) -> None:
        if scope["type"] == "websocket":
            # A handshake cannot follow a redirect: refuse it like any other bad host.
            await refuse_websocket(scope, receive, send, 400, _INVALID)
            return
        scheme = scope_scheme(scope)
        raw_path = scope.get("raw_path")
        if isinstance(raw_path, bytes) and raw_path.startswith(b"/"):
            # Already percent-encoded on the wire; re-quoting keeps only safe bytes.
            path = quote(raw_path.decode("latin-1"), safe="/%:@!$&'()*+,;=-._~")
        else:
            path = quote(scope.get("root_path", "") + scope["path"])
        query = scope.get("query_string") or b""
        location = f"{scheme}://{netloc}{path}"
        if query:
            location += "?" + quote(query.decode("latin-1"), safe="=&;%+:@/?!$'()*,-._~")
        await send_response(
            send, 307, b"", content_type=None, headers=((b"location", location.encode("ascii")),)
        )
