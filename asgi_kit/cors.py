"""Cross-Origin Resource Sharing (Fetch standard) as pure-ASGI middleware.

:class:`CORSMiddleware` takes the same parameters as Starlette's, in the same
order, so a Starlette/FastAPI user migrates by changing the import.  On top of
that it compares origins after normalisation, accepts a callable deciding per
origin, never combines ``*`` with credentials, keeps an existing ``Vary``,
answers the Private Network Access preflight, checks the ``Origin`` of
WebSocket handshakes, and puts CORS headers on the 500 sent for an unhandled
exception so browsers show the real error instead of a CORS failure.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Final

from ._plumbing.cache import BoundedCache
from ._plumbing.headers import (
    TOKEN_BYTES_RE,
    TOKEN_RE,
    HeaderScan,
    header_value,
    normalize_header_name,
)
from ._plumbing.hosts import DEFAULT_PORTS, split_host
from ._plumbing.options import (
    check_app,
    check_bool,
    check_callable,
    check_exclude_paths,
    check_int,
    check_str,
    check_str_items,
)
from ._plumbing.responses import refuse_websocket, send_response
from ._plumbing.start import StartRewrite
from ._routes import mark_answered
from .types import AnyASGIApp, Headers, Message, Receive, Scope, Send

__all__ = ["ALL_METHODS", "SAFELISTED_HEADERS", "CORSMiddleware", "OriginFunc"]

logger = logging.getLogger("asgi_kit.cors")

#: What ``allow_methods=["*"]`` expands to (the same list as Starlette).
ALL_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
#: Request headers every preflight may ask for, whatever ``allow_headers`` says.
SAFELISTED_HEADERS: Final = ("accept", "accept-language", "content-language", "content-type")

#: ``allow_origin_func``: takes the request's ``Origin`` and returns (or awaits to) a bool.
OriginFunc = Callable[[str], bool | Awaitable[bool]]

# The methods Fetch upper-cases in requests; configured in any case they mean the same.
# Not _plumbing.methods' normaliser on purpose: a browser sends ``patch`` as
# written and then compares Access-Control-Allow-Methods case-sensitively, so
# CORS must answer in the case the browser will check.
_FETCH_NORMALISED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})
# A serialised origin: scheme "://" host [":" port], ASCII only (browsers send
# IDNs as punycode).  IPv6 hosts are bracketed.  No userinfo, path or query.
_ORIGIN_RE = re.compile(
    r"([a-z][a-z0-9+.\-]*)://(\[[0-9a-f:.]+\]|[a-z0-9\-._~%]+)(?::([0-9]{1,5}))?",
    re.ASCII | re.IGNORECASE,
)
# A hostile client may send any number of origins; remember this many decisions.
_CACHE_SIZE = 1024
# A real origin is at most ~270 bytes (a 253-byte host); longer values are
# decided every time rather than remembered, so they cannot pin memory.
_MAX_CACHED_ORIGIN = 512
# Upper bounds on Access-Control-Request-Headers: browsers send a handful of names.
_MAX_REQUEST_HEADERS = 64
_MAX_REQUEST_HEADERS_BYTES = 8192

_ACAO = b"access-control-allow-origin"
_ACAC = b"access-control-allow-credentials"
_ACEH = b"access-control-expose-headers"
_ACAM = b"access-control-allow-methods"
_ACAH = b"access-control-allow-headers"
_ACMA = b"access-control-max-age"
_ACAPN = b"access-control-allow-private-network"
_ACRH = b"access-control-request-headers"
_ACRM = b"access-control-request-method"
_ACRPN = b"access-control-request-private-network"
_ORIGIN_NAME = b"origin"
_TRUE = b"true"
_OK_HEAD: Final = ((b"content-length", b"2"), (b"content-type", b"text/plain; charset=utf-8"))
_VARY = b"vary"
_PREFLIGHT_VARY = (
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    b"Access-Control-Request-Private-Network"
)
_ORIGIN = b"Origin"
# The request headers read, one pass per request: an OPTIONS request may be a
# preflight (ACRH may be split over several lines); any other request needs
# only Origin, found by a look-up that stops at it; a handshake needs Host too.
_PREFLIGHT_SCAN = HeaderScan((_ORIGIN_NAME, _ACRM, _ACRH, _ACRPN), lists=(_ACRH,))
_WEBSOCKET_SCAN = HeaderScan((_ORIGIN_NAME, b"host"))
# The response-start rewrites: an allowed origin replaces the app's own
# Access-Control-* headers of the names it sets; every answer that depends on
# Origin merges ``Vary: Origin``.
_VARY_ONLY = StartRewrite(vary=(_ORIGIN,))

HeaderPairs = tuple[tuple[bytes, bytes], ...]


def normalize_origin(origin: str) -> str | None:
    """Return ``origin`` in canonical form, or None when it is not an origin.

    The scheme and host are lower-cased and a default port (80 for
    ``http``/``ws``, 443 for ``https``/``wss``) is dropped, so
    ``HTTPS://Example.com:443`` and ``https://example.com`` compare equal.
    ``"null"`` is returned unchanged.  Anything with a path, query, user info
    or non-ASCII characters is not an origin.
    """
    if origin == "null":
        return origin
    match = _ORIGIN_RE.fullmatch(origin)
    if match is None:
        return None
    scheme, host, port = match.groups()
    scheme = scheme.lower()
    host = host.lower()
    if port is not None:
        number = int(port)
        if number > 65535:
            return None
        port = None if DEFAULT_PORTS.get(scheme) == number else str(number)
    return f"{scheme}://{host}" if port is None else f"{scheme}://{host}:{port}"


class _Grant:
    """The precomputed answer for one origin (allowed or denied)."""

    __slots__ = ("actual", "allowed", "preflight", "rewrite", "vary")

    def __init__(
        self,
        allowed: bool,
        actual: HeaderPairs,
        preflight: HeaderPairs,
        vary: bool,
        rewrite: StartRewrite,
    ):
        self.allowed = allowed
        #: Headers added to actual (non-preflight) responses.
        self.actual = actual
        #: Origin-dependent headers of an allowed preflight answer.
        self.preflight = preflight
        #: Whether actual responses get ``Vary: Origin``.
        self.vary = vary
        #: Puts ``actual`` (replacing the app's headers of those names) and Vary on a start.
        self.rewrite = rewrite


_DENIED: Final = _Grant(False, (), (), True, _VARY_ONLY)


class CORSMiddleware:
    """Answer CORS preflights and add CORS headers to responses.

    A drop-in for Starlette's ``CORSMiddleware`` (same parameters, same
    order, ``"*"`` means the same), following the Fetch standard:

    * A preflight (``OPTIONS`` with ``Origin`` and
      ``Access-Control-Request-Method``) is answered here and never reaches
      the app: 200 with the ``Access-Control-Allow-*`` headers, or 400 with a
      short plain-text reason (``Disallowed CORS origin, method``) and no
      allow headers.
    * Any other request carrying ``Origin`` runs the app; an allowed origin
      gets ``Access-Control-Allow-Origin`` (the exact origin whenever the
      answer depends on it, never ``*`` with credentials),
      ``Access-Control-Allow-Credentials`` and
      ``Access-Control-Expose-Headers``; ``Vary: Origin`` is merged into any
      existing ``Vary``.  Requests without ``Origin`` pass straight through.
    * When the app raises before responding to an allowed origin, a 500
      carrying the CORS headers is sent (then the exception propagates), so
      the browser shows the error rather than a CORS failure.
    * A WebSocket handshake from an origin that is not allowed (and not the
      server's own host) is refused with 403.

    Args:
        app: The ASGI application to wrap (ASGI 2 apps are adapted).
        allow_origins: Allowed origins, ``scheme://host[:port]``, compared
            after normalising case and default ports.  ``"*"`` allows every
            origin except ``"null"``, which is only allowed when listed.
        allow_methods: Methods a preflight may ask for; ``"*"`` means
            :data:`ALL_METHODS`.  Compared case-sensitively, as HTTP does.
        allow_headers: Request headers a preflight may ask for (any case),
            in addition to :data:`SAFELISTED_HEADERS`; ``"*"`` allows any.
        allow_credentials: Send ``Access-Control-Allow-Credentials: true``;
            the allowed origin is then always reflected instead of ``*``.
        allow_origin_regex: A regular expression the normalised origin must
            match in full, e.g. ``r"https://.*\\.example\\.org"``.
        allow_private_network: Answer Private Network Access preflights
            (``Access-Control-Request-Private-Network``) with
            ``Access-Control-Allow-Private-Network: true``; when False such a
            preflight gets 400.
        expose_headers: Response headers scripts may read
            (``Access-Control-Expose-Headers``).
        max_age: Seconds a browser may cache a preflight answer.
        allow_origin_func: ``func(origin) -> bool`` or an async function,
            consulted for origins the list and regex do not allow; a truthy
            answer allows the origin.  Called
            per request (its answers are not cached); an exception counts as
            "not allowed" and is logged.
        check_websocket_origin: Refuse WebSocket handshakes whose ``Origin``
            is neither allowed nor the server's own host.  Handshakes without
            ``Origin`` (non-browser clients) always pass.
        exclude_paths: Request paths (exact, or ``/prefix/*`` globs) this
            middleware leaves alone: no CORS headers, preflights reach the
            app (for an endpoint that answers CORS itself).

    Raises:
        ValueError: An option has an invalid value (the message names it).
        TypeError: An option has the wrong type.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        allow_origins: Collection[str] = (),
        allow_methods: Collection[str] = ("GET",),
        allow_headers: Collection[str] = (),
        allow_credentials: bool = False,
        allow_origin_regex: str | None = None,
        allow_private_network: bool = False,
        expose_headers: Collection[str] = (),
        max_age: int = 600,
        allow_origin_func: OriginFunc | None = None,
        check_websocket_origin: bool = True,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        self.app = check_app(app)
        check_bool("allow_credentials", allow_credentials)
        check_bool("allow_private_network", allow_private_network)
        check_bool("check_websocket_origin", check_websocket_origin)
        check_int("max_age", max_age, 0)
        check_callable("allow_origin_func", allow_origin_func)
        check_str("allow_origin_regex", allow_origin_regex, optional=True)
        self._exclude = check_exclude_paths(exclude_paths)
        self.exclude_paths = self._exclude.patterns
        self._excluded = self._exclude if self._exclude else None

        origins = check_str_items("allow_origins", allow_origins, single=True)
        self.allow_all_origins = "*" in origins
        exact: set[str] = set()
        for origin in origins:
            if origin == "*":
                continue
            normalised = normalize_origin(origin)
            if normalised is None:
                hint = ""
                if "*" in origin:
                    hint = " (use allow_origin_regex for patterns)"
                elif origin.endswith("/"):
                    hint = " (remove the trailing '/')"
                elif not origin.isascii():
                    hint = " (write international domain names in punycode, as browsers send them)"
                raise ValueError(
                    f"allow_origins: {origin!r} is not an origin; expected "
                    f"'scheme://host[:port]' with no path, '*' or 'null'{hint}"
                )
            exact.add(normalised)
        self._exact = frozenset(exact)
        # The same entries as written: a browser's Origin usually matches one
        # byte for byte, which skips normalisation on a cache miss.
        self._exact_raw = frozenset(o.encode("ascii") for o in origins if o != "*")

        self.allow_origins: tuple[str, ...] = tuple(origins)
        self._regex: re.Pattern[str] | None = None
        if allow_origin_regex is not None:
            try:
                self._regex = re.compile(allow_origin_regex)
            except re.error as exc:
                raise ValueError(
                    f"allow_origin_regex: {allow_origin_regex!r} is not a valid regex: {exc}"
                ) from None
        #: The compiled ``allow_origin_regex`` (as Starlette exposes it), or None.
        self.allow_origin_regex = self._regex
        self._func = self.allow_origin_func = allow_origin_func

        methods = check_str_items("allow_methods", allow_methods, single=True)
        self._all_methods = "*" in methods
        if self._all_methods:
            methods = ALL_METHODS
        clean_methods: list[str] = []
        for method in methods:
            if not TOKEN_RE.fullmatch(method):
                raise ValueError(f"allow_methods: {method!r} is not a valid HTTP method")
            if method.upper() in _FETCH_NORMALISED_METHODS:
                method = method.upper()
            if method not in clean_methods:
                clean_methods.append(method)
        self.allow_methods: tuple[str, ...] = tuple(clean_methods)
        self._methods = frozenset(m.encode("ascii") for m in clean_methods)

        header_names = check_str_items("allow_headers", allow_headers, single=True)
        self.allow_all_headers = "*" in header_names
        allowed = {normalize_header_name(h.strip(), "allow_headers") for h in header_names}
        allowed.update(h.encode("ascii") for h in SAFELISTED_HEADERS)
        allowed.discard(b"*")
        self._allowed_headers = frozenset(allowed)
        self.allow_headers: tuple[str, ...] = tuple(sorted(h.decode() for h in allowed))

        exposed = check_str_items("expose_headers", expose_headers, single=True)
        for name in exposed:
            normalize_header_name(name.strip(), "expose_headers")
        self.expose_headers = tuple(name.strip() for name in exposed)

        self.allow_credentials = allow_credentials
        self.allow_private_network = allow_private_network
        self.max_age = max_age
        self.check_websocket_origin = check_websocket_origin

        # The answer depends on Origin unless every origin gets a literal "*".
        self._origin_dependent = not self.allow_all_origins or allow_credentials
        shared: list[tuple[bytes, bytes]] = []
        if allow_credentials:
            shared.append((_ACAC, _TRUE))
        self._shared = tuple(shared)
        self._expose = (
            ((_ACEH, ", ".join(self.expose_headers).encode("latin-1")),)
            if self.expose_headers
            else ()
        )
        actual_names = [name for name, _ in ((_ACAO, b""), *self._shared, *self._expose)]
        self._allowed_rewrite = StartRewrite(replace=actual_names, vary=(_ORIGIN,))
        self._star_grant = _Grant(
            True,
            ((_ACAO, b"*"), *self._shared, *self._expose),
            ((_ACAO, b"*"), *self._shared),
            False,
            StartRewrite(replace=actual_names),
        )

        # Every preflight answer depends on all four request headers: even with
        # "*" origins a "null" or malformed Origin is refused, and "*" methods
        # are a finite list, so an unknown method is refused too.
        self._preflight_vary: HeaderPairs = ((_VARY, _PREFLIGHT_VARY),)
        self._preflight_static: HeaderPairs = (
            (_ACAM, ", ".join(self.allow_methods).encode("ascii")),
            (_ACMA, str(max_age).encode("ascii")),
        )
        # Origin -> static decision; a flood of made-up origins only costs speed.
        self._grants: BoundedCache[bytes, _Grant] = BoundedCache(_CACHE_SIZE, _MAX_CACHED_ORIGIN)

    # ------------------------------------------------------------------ origins

    def _grant_for(self, origin: bytes) -> _Grant:
        """The static decision (list, ``*``, regex) for ``origin``; memoised."""
        grant = self._grants.get(origin)
        if grant is not None:
            return grant
        return self._grants.put(origin, self._decide(origin))

    def _decide(self, origin: bytes) -> _Grant:
        if origin in self._exact_raw:
            return self._allow(origin)
        text = origin.decode("latin-1")
        normalised = normalize_origin(text)
        if normalised is None:
            return _DENIED
        if normalised in self._exact:
            return self._allow(origin)
        if normalised == "null":
            # Sandboxed iframes, file:// and redirects: never matched by "*" or a regex.
            return _DENIED
        if self.allow_all_origins:
            return self._allow(origin)
        if self._regex is not None and self._regex.fullmatch(normalised):
            return self._allow(origin)
        return _DENIED

    def _allow(self, origin: bytes) -> _Grant:
        if not self._origin_dependent:
            return self._star_grant
        acao = (_ACAO, origin)
        return _Grant(
            True,
            (acao, *self._shared, *self._expose),
            (acao, *self._shared),
            True,
            self._allowed_rewrite,
        )

    async def _ask_func(self, origin: bytes) -> _Grant:
        """Consult ``allow_origin_func`` for an origin the static rules deny."""
        assert self._func is not None
        text = origin.decode("latin-1")
        normalised = normalize_origin(text)
        if normalised is None or normalised == "null":
            return _DENIED
        try:
            answer = self._func(text)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception:
            logger.exception("allow_origin_func raised for origin %r; origin not allowed", text)
            return _DENIED
        return self._allow(origin) if answer else _DENIED

    async def _resolve(self, origin: bytes) -> _Grant:
        grant = self._grant_for(origin)
        if not grant.allowed and self._func is not None:
            return await self._ask_func(origin)
        return grant

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http":
            if (
                scope_type == "websocket"
                and self.check_websocket_origin
                and (self._excluded is None or not self._excluded(scope["path"]))
            ):
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        excluded = self._excluded
        if excluded is not None and excluded(scope["path"]):
            await self.app(scope, receive, send)
            return

        found: dict[bytes, bytes] | None = None
        if scope["method"] != "OPTIONS":
            origin = header_value(scope["headers"], _ORIGIN_NAME)
        else:
            found = _PREFLIGHT_SCAN.scan(scope["headers"])
            origin = None if found is None else found.get(_ORIGIN_NAME)
        if origin is None:
            # Same-origin and non-browser requests: no CORS headers, but the
            # answer still depends on Origin, so a shared cache must key on it
            # (else it could serve this response to a cross-origin request).
            await self.app(scope, receive, _vary_on_origin(send))
            return
        if found is not None:
            method = found.get(_ACRM)
            if method is not None:
                mark_answered(scope, "cors")  # for metrics: not an unmatched path
                await self._preflight(found, origin, method, send)
                return

        grant = self._grants.get(origin)
        if grant is None or (not grant.allowed and self._func is not None):
            grant = await self._resolve(origin)
        actual = grant.actual
        apply = grant.rewrite.apply
        started = False

        async def send_with_cors(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = apply(message, actual)
            await send(message)

        try:
            await self.app(scope, receive, send_with_cors)
        except Exception:
            # Outer error handlers answer 500 without CORS headers, which a
            # browser reports as a CORS failure and hides the real status.
            if not started and grant.allowed:
                with contextlib.suppress(Exception):
                    await send_response(
                        send, 500, b"Internal Server Error", headers=_with_vary(actual, grant.vary)
                    )
            raise

    async def _preflight(
        self, found: dict[bytes, bytes], origin: bytes, method: bytes, send: Send
    ) -> None:
        grant = self._grants.get(origin)
        if grant is None or (not grant.allowed and self._func is not None):
            grant = await self._resolve(origin)
        failures: list[bytes] = []
        if not grant.allowed:
            failures.append(b"origin")
        if method not in self._methods:
            failures.append(b"method")
        requested = found.get(_ACRH)
        private_network = found.get(_ACRPN)
        allow_headers: bytes | None = None
        if requested is not None:
            allow_headers = self._check_request_headers(requested)
            if allow_headers is None:
                failures.append(b"headers")
        if private_network is not None and not self.allow_private_network:
            failures.append(b"private-network")
        if failures:
            reason = b"Disallowed CORS " + b", ".join(failures)
            await send_response(send, 400, reason, headers=self._preflight_vary)
            return
        answer: Headers = [*_OK_HEAD, *grant.preflight, *self._preflight_static]
        if allow_headers:
            answer.append((_ACAH, allow_headers))
        if private_network is not None:
            answer.append((_ACAPN, _TRUE))
        answer.extend(self._preflight_vary)
        await send({"type": "http.response.start", "status": 200, "headers": answer})
        await send({"type": "http.response.body", "body": b"OK", "more_body": False})

    def _check_request_headers(self, value: bytes) -> bytes | None:
        """The names to allow for ``Access-Control-Request-Headers``, or None to refuse."""
        if len(value) > _MAX_REQUEST_HEADERS_BYTES:
            return None
        parts = value.split(b",", _MAX_REQUEST_HEADERS)
        if len(parts) > _MAX_REQUEST_HEADERS:
            return None
        names: list[bytes] = []
        allow_all = self.allow_all_headers
        allowed = self._allowed_headers
        for part in parts:
            name = part.strip(b" \t")
            if not name:
                continue
            if name.lower() not in allowed and not (allow_all and TOKEN_BYTES_RE.fullmatch(name)):
                return None
            names.append(name)  # as requested: names are case-insensitive, echoes exact
        return b", ".join(names)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _WEBSOCKET_SCAN.scan(scope["headers"])
        origin = None if found is None else found.get(_ORIGIN_NAME)
        if origin is not None:
            assert found is not None
            grant = self._grants.get(origin)
            if grant is None or (not grant.allowed and self._func is not None):
                grant = await self._resolve(origin)
            if not grant.allowed and not _same_host(origin, found.get(b"host")):
                await refuse_websocket(scope, receive, send, 403, b"Disallowed CORS origin")
                return
        await self.app(scope, receive, send)


def _with_vary(pairs: HeaderPairs, vary: bool) -> HeaderPairs:
    return (*pairs, (_VARY, _ORIGIN)) if vary else pairs


def _vary_on_origin(send: Send) -> Send:
    """``send`` that merges ``Vary: Origin`` into the response start."""

    async def send_with_vary(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = _VARY_ONLY.apply(message)
        await send(message)

    return send_with_vary


def _same_host(origin: bytes, host: bytes | None) -> bool:
    """Whether ``origin`` names the host the request was sent to (``Host``)."""
    if host is None:
        return False
    normalised = normalize_origin(origin.decode("latin-1"))
    if normalised is None or normalised == "null":
        return False
    scheme, _, netloc = normalised.partition("://")
    default = DEFAULT_PORTS.get(scheme)
    origin_host, origin_port = split_host(netloc)
    target_host, target_port = split_host(host.decode("latin-1").strip().lower())
    if origin_port is None:
        origin_port = default
    if target_port is None:
        target_port = default
    return origin_host == target_host and origin_port == target_port
