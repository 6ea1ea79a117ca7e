"""CSRFMiddleware: tokenless cross-origin request protection by Fetch Metadata.

The algorithm is Go 1.25's ``http.CrossOriginProtection`` (and OWASP's CSRF
cheat sheet's "Fetch Metadata" defence): browsers tell the server where a
request comes from in ``Sec-Fetch-Site`` (every browser since 2023) and
``Origin``; an unsafe request another site made is refused.  Clients that send
neither header are not browsers, so they carry no ambient credentials
(cookies) an attacker could borrow, and pass.  No token, no cookie, no
template change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from asgi_kit._http import (
    PathMatcher,
    asgi3,
    parse_qvalues,
    refuse_websocket,
    scope_scheme,
    send_json,
    send_response,
)
from asgi_kit.cors import normalize_origin
from asgi_kit.types import AnyASGIApp, Receive, Scope, Send

from ._host import format_host, parse_host

__all__ = ["REASONS", "CSRFMiddleware"]

#: The reasons a request is refused, as logged, counted and sent in the body.
REASONS: Final = {
    "cross-site": "Sec-Fetch-Site says the request came from another site",
    "same-site": "Sec-Fetch-Site says the request came from another origin of this site",
    "sec-fetch-site": "Sec-Fetch-Site has a value browsers never send",
    "origin-null": "Origin is null (a sandboxed document, a file, or a redirect)",
    "origin-mismatch": "Origin does not match the request's own origin",
}
#: Prometheus counter of refusals, by ``reason`` and ``method``.
METRIC_NAME: Final = "http_server_csrf_refusals"

# The methods browsers send, for a bounded ``method`` label (OTel's well-known set).
_KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
# Fetch upper-cases these (fetch(url, {method: "post"}) sends POST): configured in
# any case they mean the same method.
_FETCH_NORMALISED = frozenset(("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"))
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATTERN_RE = re.compile(
    r"([a-z][a-z0-9+.\-]*)://\*\.([a-z0-9\-._~]+)(?::([0-9]{1,5}))?", re.ASCII | re.IGNORECASE
)
_WEB_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_SAME_ORIGIN = b"same-origin"
_NONE = b"none"
_MAX_LOGGED = 200

# One counter per registry, shared by every middleware instance on it.
_counters: dict[int, tuple[CollectorRegistry, Counter]] = {}


def _counter(registry: CollectorRegistry) -> Counter:
    cached = _counters.get(id(registry))
    if cached is not None and cached[0] is registry:
        return cached[1]
    try:
        counter = Counter(
            METRIC_NAME,
            "Requests refused by CSRFMiddleware as cross-origin, by reason.",
            ("reason", "method"),
            registry=registry,
        )
    except ValueError:
        # Already registered in this registry (a re-imported module, another
        # process-wide instance): share the existing family.
        existing = getattr(registry, "_names_to_collectors", {}).get(METRIC_NAME + "_total")
        if not isinstance(existing, Counter):
            raise ValueError(
                f"registry: it already holds a metric named {METRIC_NAME!r} that is not "
                "CSRFMiddleware's; pass another registry"
            ) from None
        counter = existing
    _counters[id(registry)] = (registry, counter)
    return counter


def _printable(value: bytes | None) -> str | None:
    """A client header value, bounded and decodable, for a log event."""
    if value is None:
        return None
    text = value[:_MAX_LOGGED].decode("latin-1")
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


class CSRFMiddleware:
    """Refuse cross-origin unsafe requests, as browsers report them.

    For a request whose method is not in ``safe_methods`` (and every
    WebSocket handshake, which browsers send cross-origin freely):

    1. ``Sec-Fetch-Site: same-origin`` or ``none`` (typed in the address
       bar, a bookmark) passes.
    2. ``Sec-Fetch-Site: same-site`` or ``cross-site`` (or any other value)
       is refused unless ``Origin`` is in ``trusted_origins``.
    3. Without ``Sec-Fetch-Site`` (older browsers, plain http origins in
       some browsers), an ``Origin`` that is neither the request's own
       origin (``scope["scheme"]`` and the ``Host`` header, as
       ProxyHeadersMiddleware corrects them) nor trusted is refused;
       ``Origin: null`` always is.
    4. A request with neither header passes: it is not from a browser.

    Methods are compared exactly, as RFC 9110 says: ``post`` is not a safe
    method (frameworks route it to the POST handler), so it is checked.
    A refused HTTP request gets 403 with a short reason (JSON when the client
    accepts it, else text); a refused handshake is closed with 403.  Each
    refusal is logged once (structlog event ``csrf_refused``) and counted
    in ``http_server_csrf_refusals_total{reason, method}``.

    Args:
        app: The ASGI application to wrap.
        trusted_origins: Origins allowed to make cross-origin requests:
            exact (``"https://app.example.com"``) or with a wildcard for
            every subdomain (``"https://*.example.com"``, not the bare
            domain).  Compared after normalising case and default ports.
        exclude_paths: Paths (exact or ``/prefix/*``) not checked, such as
            webhooks called by other servers.
        safe_methods: Methods never checked.  ``GET``, ``HEAD`` and
            ``OPTIONS`` must not change state for this to protect you.
        registry: The Prometheus registry for the refusal counter, or None
            for no metric.
        logger: A structlog-style logger (``.warning(event, **fields)``);
            None uses ``structlog.get_logger("asgi_kit.security")``.

    Raises:
        ValueError: An option has an invalid value (the message names it).
        TypeError: An option has the wrong type.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        trusted_origins: Iterable[str] = (),
        exclude_paths: Iterable[str] = (),
        safe_methods: Iterable[str] = ("GET", "HEAD", "OPTIONS"),
        *,
        registry: CollectorRegistry | None = REGISTRY,
        logger: Any = None,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {app!r}")
        self.app = asgi3(app)
        exact: set[str] = set()
        patterns: list[tuple[str, str, str | None]] = []
        origins = _strings(trusted_origins, "trusted_origins")
        for origin in origins:
            match = _PATTERN_RE.fullmatch(origin)
            if match is not None:
                scheme, suffix, port = match.groups()
                check = normalize_origin(f"{scheme}://{suffix}" + (f":{port}" if port else ""))
                if check is None:
                    raise ValueError(f"trusted_origins: {origin!r} is not a valid pattern")
                scheme, _, netloc = check.partition("://")
                host, _, port_text = netloc.partition(":")
                patterns.append((scheme, "." + host, port_text or None))
                continue
            normalised = normalize_origin(origin)
            if normalised is None or normalised == "null":
                hint = ""
                if origin.startswith("*"):
                    hint = f" (write the scheme: 'https://{origin}')"
                elif origin.endswith("/"):
                    hint = " (remove the trailing '/')"
                elif "*" in origin:
                    hint = " (a wildcard must be the first label: 'https://*.example.com')"
                raise ValueError(
                    f"trusted_origins: {origin!r} is not an origin; expected "
                    f"'scheme://host[:port]' or 'scheme://*.domain[:port]'{hint}"
                )
            exact.add(normalised)
        self.trusted_origins: tuple[str, ...] = tuple(origins)
        self._exact = frozenset(exact)
        self._exact_raw = frozenset(o.encode("ascii") for o in exact)
        self._patterns = tuple(patterns)

        methods: list[str] = []
        for method in _strings(safe_methods, "safe_methods"):
            if _TOKEN_RE.fullmatch(method) is None:
                raise ValueError(f"safe_methods: {method!r} is not an HTTP method")
            if method.upper() in _FETCH_NORMALISED:
                method = method.upper()
            methods.append(method)
        self.safe_methods = frozenset(methods)
        self.exclude_paths = PathMatcher(exclude_paths, "exclude_paths")
        if registry is not None and not isinstance(registry, CollectorRegistry):
            raise TypeError(f"registry must be a CollectorRegistry or None, got {registry!r}")
        self._counter = _counter(registry) if registry is not None else None
        if logger is not None and not callable(getattr(logger, "warning", None)):
            raise TypeError(f"logger must have a warning() method, got {logger!r}")
        self._logger = logger if logger is not None else structlog.get_logger("asgi_kit.security")

    # ------------------------------------------------------------------ decisions

    def origin_trusted(self, origin: bytes) -> bool:
        """Whether ``origin`` (an ``Origin`` header value) is in ``trusted_origins``."""
        if origin in self._exact_raw:
            return True
        if not self._exact and not self._patterns:
            return False
        normalised = normalize_origin(origin.decode("latin-1"))
        if normalised is None or normalised == "null":
            return False
        if normalised in self._exact:
            return True
        scheme, _, netloc = normalised.partition("://")
        if netloc.startswith("["):
            return False
        host, _, port = netloc.partition(":")
        for p_scheme, suffix, p_port in self._patterns:
            if scheme == p_scheme and host.endswith(suffix) and (port or None) == p_port:
                return True
        return False

    def _check(self, scope: Scope) -> str | None:
        """The refusal reason for this request, or None when it may pass."""
        site = origin = host = None
        for key, value in scope["headers"]:
            n = len(key)
            if n == 14:
                if site is None and (key == b"sec-fetch-site" or key.lower() == b"sec-fetch-site"):
                    site = value
            elif n == 6:
                if origin is None and (key == b"origin" or key.lower() == b"origin"):
                    origin = value
            elif n == 4 and host is None and (key == b"host" or key.lower() == b"host"):
                host = value
        if site is not None:
            if site in (_SAME_ORIGIN, _NONE):
                return None
            if origin is not None and self.origin_trusted(origin):
                return None
            if site == b"cross-site":
                return "cross-site"
            return "same-site" if site == b"same-site" else "sec-fetch-site"
        if origin is None:
            return None
        if origin == b"null":
            return "origin-null"
        if self._is_own_origin(scope, origin, host) or self.origin_trusted(origin):
            return None
        return "origin-mismatch"

    @staticmethod
    def _is_own_origin(scope: Scope, origin: bytes, host: bytes | None) -> bool:
        if host is None:
            return False
        parsed = parse_host(host.decode("latin-1").strip(" \t"))
        if parsed is None:
            return False
        scheme = _WEB_SCHEMES.get(scope_scheme(scope), "http")
        own = f"{scheme}://{format_host(parsed[0], parsed[1], scheme)}"
        if origin == own.encode("ascii"):
            return True
        return normalize_origin(origin.decode("latin-1")) == own

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "http":
            if scope["method"] in self.safe_methods:
                await self.app(scope, receive, send)
                return
        elif scope_type != "websocket":
            await self.app(scope, receive, send)
            return
        if self.exclude_paths and self.exclude_paths(scope["path"]):
            await self.app(scope, receive, send)
            return
        reason = self._check(scope)
        if reason is None:
            await self.app(scope, receive, send)
            return
        self._report(scope, reason)
        detail = REASONS[reason]
        if scope_type == "websocket":
            await refuse_websocket(
                scope, receive, send, 403, f"Cross-origin request refused: {detail}".encode()
            )
            return
        if _wants_json(scope):
            await send_json(send, 403, {"error": "cross_origin_request", "reason": reason,
                                        "detail": detail})  # fmt: skip
        else:
            body = f"Cross-origin request refused: {detail}\n".encode()
            await send_response(send, 403, body)

    def _report(self, scope: Scope, reason: str) -> None:
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        if self._counter is not None:
            label = method if method in _KNOWN_METHODS else "_OTHER"
            self._counter.labels(reason, label).inc()
        headers = scope["headers"]
        fields: dict[str, Any] = {
            "reason": reason,
            "method": method[:_MAX_LOGGED],
            "path": str(scope.get("path", ""))[:_MAX_LOGGED],
            "websocket": scope["type"] == "websocket",
        }
        for name, key in (
            (b"origin", "origin"),
            (b"sec-fetch-site", "sec_fetch_site"),
            (b"host", "host"),
        ):
            for header, value in headers:
                if header.lower() == name:
                    fields[key] = _printable(value)
                    break
        try:
            self._logger.warning("csrf_refused", **fields)
        except Exception:  # a broken logger never fails the request
            pass


def _wants_json(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if len(key) == 6 and key.lower() == b"accept":
            for media, q in parse_qvalues(value):
                if q > 0 and (media == "application/json" or media.endswith("+json")):
                    return True
            return False
    return False


def _strings(value: object, option: str) -> list[str]:
    if isinstance(value, str):
        raise TypeError(f"{option} must be a list of strings, not a single string")
    if not isinstance(value, Iterable):
        raise TypeError(f"{option} must be a list of strings, got {value!r}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{option} must contain strings, got {item!r}")
    return items
