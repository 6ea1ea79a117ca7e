"""SecurityHeadersMiddleware: the response headers the OWASP Secure Headers Project recommends.

Every header value is validated and encoded once, in ``__init__``; a request
costs one scan of the app's response headers (to keep any the app set
itself) and, with ``csp_nonce=True``, one random nonce spliced into the
precomputed policy.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Final

from asgi_kit._http import PathMatcher, asgi3, copy_start
from asgi_kit.types import AnyASGIApp, Message, Receive, Scope, Send

from ._policy import (
    Policy,
    check_header_text,
    parse_csp,
    permissions_policy_value,
    reporting_endpoints_value,
)

__all__ = ["HSTS_MAX_AGE", "SecurityHeadersMiddleware"]

#: HSTS ``max-age`` when ``hsts=True``: one year, as OWASP recommends (and the
#: minimum the HSTS preload list accepts).
HSTS_MAX_AGE: Final = 31_536_000
#: Key of ``scope["state"]`` holding the request's CSP nonce (``request.state.csp_nonce``).
NONCE_KEY: Final = "csp_nonce"

_FRAME_OPTIONS: Final = {"DENY": "'none'", "SAMEORIGIN": "'self'"}
_REFERRER_POLICIES: Final = frozenset(
    {
        "no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
        "same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
    }
)  # fmt: skip
_COOP: Final = frozenset(
    {"same-origin", "same-origin-allow-popups", "noopener-allow-popups", "unsafe-none"}
)
_COEP: Final = frozenset({"require-corp", "credentialless", "unsafe-none"})
_CORP: Final = frozenset({"same-origin", "same-site", "cross-origin"})
_PCDP: Final = frozenset({"none", "master-only", "by-content-type", "by-ftp-filename", "all"})
# Never a valid policy character (refused by validation), so it marks where the nonce goes.
_MARK: Final = "\x00"

_CSP = b"content-security-policy"
_CSP_RO = b"content-security-policy-report-only"
_HSTS = b"strict-transport-security"

HeaderPairs = tuple[tuple[bytes, bytes], ...]

# The options an ``overrides`` entry may change (everything but the path options).
_OPTION_NAMES: Final = (
    "hsts",
    "content_security_policy",
    "csp_report_only",
    "csp_nonce",
    "frame_options",
    "referrer_policy",
    "cross_origin_opener_policy",
    "permissions_policy",
    "content_type_options",
    "cross_origin_embedder_policy",
    "cross_origin_resource_policy",
    "reporting_endpoints",
    "permitted_cross_domain_policies",
)


def _choice(value: object, allowed: frozenset[str], option: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a str or None, got {value!r}")
    if value.strip().lower() not in allowed:
        raise ValueError(f"{option}: {value!r} is not one of {', '.join(sorted(allowed))}")
    return value.strip().lower().encode("ascii")


def _hsts_value(hsts: object) -> bytes | None:
    if hsts is False or hsts is None:
        return None
    max_age, subdomains, preload = HSTS_MAX_AGE, True, False
    if hsts is True:
        pass
    elif isinstance(hsts, int):
        max_age = hsts
    elif isinstance(hsts, Mapping):
        unknown = set(hsts) - {"max_age", "include_subdomains", "preload"}
        if unknown:
            raise ValueError(
                f"hsts: unknown key {sorted(map(str, unknown))[0]!r}; "
                "expected max_age, include_subdomains, preload"
            )
        max_age = hsts.get("max_age", HSTS_MAX_AGE)
        subdomains = hsts.get("include_subdomains", True)
        preload = hsts.get("preload", False)
        if not isinstance(subdomains, bool) or not isinstance(preload, bool):
            raise TypeError("hsts: include_subdomains and preload must be bools")
    else:
        raise TypeError(f"hsts must be a bool, an int max-age or a dict of options, got {hsts!r}")
    if isinstance(max_age, bool) or not isinstance(max_age, int):
        raise TypeError(f"hsts: max_age must be an int of seconds, got {max_age!r}")
    if max_age < 0:
        raise ValueError(f"hsts: max_age must be >= 0, got {max_age}")
    if preload and (max_age < HSTS_MAX_AGE or not subdomains):
        raise ValueError(
            "hsts: preload needs max_age >= 31536000 and include_subdomains=True "
            "(the preload list refuses anything less)"
        )
    value = f"max-age={max_age}"
    if subdomains:
        value += "; includeSubDomains"
    if preload:
        value += "; preload"
    return value.encode("ascii")


class _Headers:
    """The precomputed headers for one set of options."""

    __slots__ = ("csp_name", "csp_pieces", "lengths", "names", "plain", "secure")

    def __init__(
        self,
        hsts: object = True,
        content_security_policy: object = None,
        csp_report_only: object = False,
        csp_nonce: object = False,
        frame_options: object = "DENY",
        referrer_policy: object = "strict-origin-when-cross-origin",
        cross_origin_opener_policy: object = "same-origin",
        permissions_policy: object = None,
        content_type_options: object = True,
        cross_origin_embedder_policy: object = None,
        cross_origin_resource_policy: object = None,
        reporting_endpoints: object = None,
        permitted_cross_domain_policies: object = "none",
    ) -> None:
        for name, flag in (
            ("csp_report_only", csp_report_only),
            ("csp_nonce", csp_nonce),
            ("content_type_options", content_type_options),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        pairs: list[tuple[bytes, bytes]] = []
        if content_type_options:
            pairs.append((b"x-content-type-options", b"nosniff"))

        ancestors: str | None = None
        if frame_options is not None:
            if not isinstance(frame_options, str):
                raise TypeError(f"frame_options must be a str or None, got {frame_options!r}")
            upper = frame_options.strip().upper()
            if upper not in _FRAME_OPTIONS:
                raise ValueError(
                    f"frame_options: {frame_options!r} is not 'DENY' or 'SAMEORIGIN' "
                    "(ALLOW-FROM is obsolete: use CSP frame-ancestors)"
                )
            pairs.append((b"x-frame-options", upper.encode("ascii")))
            ancestors = _FRAME_OPTIONS[upper]

        if referrer_policy is not None:
            if not isinstance(referrer_policy, str):
                raise TypeError(f"referrer_policy must be a str or None, got {referrer_policy!r}")
            text = check_header_text(referrer_policy, "referrer_policy").decode()
            tokens = [t.strip().lower() for t in text.split(",")]
            for token in tokens:
                if token not in _REFERRER_POLICIES:
                    raise ValueError(
                        f"referrer_policy: {token!r} is not one of "
                        f"{', '.join(sorted(_REFERRER_POLICIES))}"
                    )
            pairs.append((b"referrer-policy", ", ".join(tokens).encode("ascii")))
        for header, value, allowed, option in (
            (b"cross-origin-opener-policy", cross_origin_opener_policy, _COOP,
             "cross_origin_opener_policy"),
            (b"cross-origin-embedder-policy", cross_origin_embedder_policy, _COEP,
             "cross_origin_embedder_policy"),
            (b"cross-origin-resource-policy", cross_origin_resource_policy, _CORP,
             "cross_origin_resource_policy"),
            (b"x-permitted-cross-domain-policies", permitted_cross_domain_policies, _PCDP,
             "permitted_cross_domain_policies"),
        ):  # fmt: skip
            encoded = _choice(value, allowed, option)
            if encoded is not None:
                pairs.append((header, encoded))
        if permissions_policy is not None:
            pairs.append((b"permissions-policy", permissions_policy_value(permissions_policy)))
        if reporting_endpoints is not None:
            pairs.append((b"reporting-endpoints", reporting_endpoints_value(reporting_endpoints)))

        # The policy: the user's (validated), with frame-ancestors from frame_options
        # and the nonce marker.  Report-only policies are not enforced, so the
        # framing rule then goes in an enforced policy of its own.
        policy: Policy | None = None
        if content_security_policy is not None:
            policy = parse_csp(content_security_policy)
        elif csp_nonce:
            policy = Policy({})
        self.csp_name: bytes | None = None
        self.csp_pieces: tuple[bytes, ...] = ()
        if ancestors is not None:
            if policy is not None and not csp_report_only:
                policy.directives.setdefault("frame-ancestors", [ancestors])
            else:
                pairs.append((_CSP, f"frame-ancestors {ancestors}".encode("ascii")))
        if policy is not None:
            csp_header = _CSP_RO if csp_report_only else _CSP
            if csp_nonce:
                policy.add_nonce(_MARK)
                self.csp_name = csp_header
                self.csp_pieces = tuple(p.encode("ascii") for p in policy.serialise().split(_MARK))
            else:
                pairs.append((csp_header, policy.serialise().encode("ascii")))

        self.plain: HeaderPairs = tuple(pairs)
        hsts_value = _hsts_value(hsts)
        self.secure: HeaderPairs = self.plain + (((_HSTS, hsts_value),) if hsts_value else ())
        names = {name for name, _ in self.secure}
        if self.csp_name is not None:
            names.add(self.csp_name)
        #: Lower-case names of every header this set may add.
        self.names = frozenset(names)
        # Most response headers are skipped by their length alone.
        self.lengths = frozenset(len(name) for name in names)


class SecurityHeadersMiddleware:
    """Add the OWASP Secure Headers Project's response headers to every HTTP response.

    By default every response gets ``X-Content-Type-Options: nosniff``,
    ``X-Frame-Options: DENY`` with ``Content-Security-Policy:
    frame-ancestors 'none'``, ``Referrer-Policy:
    strict-origin-when-cross-origin``, ``Cross-Origin-Opener-Policy:
    same-origin`` and ``X-Permitted-Cross-Domain-Policies: none``; https
    responses (``scope["scheme"]``, as corrected by ProxyHeadersMiddleware)
    also get ``Strict-Transport-Security: max-age=31536000;
    includeSubDomains``.  A header the app set itself (any case) is kept,
    not replaced.  WebSocket and lifespan scopes pass through untouched.

    Args:
        app: The ASGI application to wrap.
        hsts: ``True`` (one year, ``includeSubDomains``), ``False`` (none),
            an int ``max-age``, or a dict with ``max_age``,
            ``include_subdomains`` and ``preload``.  Only sent on https.
        content_security_policy: A policy string, or a dict of directive to
            values (a string, a list of strings, or ``True`` for
            ``upgrade-insecure-requests``).  Validated: unknown directives,
            unquoted keywords (``self`` for ``'self'``) and malformed sources
            raise ``ValueError``.  ``frame-ancestors`` is added from
            ``frame_options`` unless the policy names it.
        csp_report_only: Send the policy as
            ``Content-Security-Policy-Report-Only`` (the framing rule from
            ``frame_options`` stays enforced in its own header).
        csp_nonce: Make a fresh nonce per request (128 random bits,
            ``secrets.token_urlsafe``), store it in
            ``scope["state"]["csp_nonce"]`` (Starlette:
            ``request.state.csp_nonce``) and allow ``'nonce-…'`` in
            ``script-src`` and ``style-src`` (created from ``default-src``, or
            ``'self'``, when the policy has none).
        frame_options: ``"DENY"``, ``"SAMEORIGIN"`` or None.
        referrer_policy: A Referrer-Policy token (or comma-separated
            fallbacks), or None.
        cross_origin_opener_policy: ``"same-origin"``,
            ``"same-origin-allow-popups"``, ``"noopener-allow-popups"``,
            ``"unsafe-none"`` or None.
        permissions_policy: A Permissions-Policy string, or a dict of feature
            to allowlist (``{"camera": (), "geolocation": ["self"]}``);
            feature names in a dict are checked against the registry.
            :data:`asgi_kit.security.OWASP_PERMISSIONS_POLICY` is OWASP's.
        exclude_paths: Paths (exact or ``/prefix/*``) that get no headers.
        content_type_options: Send ``X-Content-Type-Options: nosniff``.
        cross_origin_embedder_policy: ``"require-corp"``,
            ``"credentialless"``, ``"unsafe-none"`` or None.
        cross_origin_resource_policy: ``"same-origin"``, ``"same-site"``,
            ``"cross-origin"`` or None.
        reporting_endpoints: A dict of endpoint name to URL, sent as
            ``Reporting-Endpoints`` (name them in the policy's ``report-to``).
        permitted_cross_domain_policies: ``X-Permitted-Cross-Domain-Policies``
            value, or None.
        overrides: A dict of path pattern (exact or glob, as
            ``exclude_paths``) to a dict of options that replace the ones
            above for matching paths; the first matching pattern wins.

    Raises:
        ValueError: An option has an invalid value (the message names it).
        TypeError: An option has the wrong type.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        hsts: bool | int | Mapping[str, Any] = True,
        content_security_policy: str | Mapping[str, Any] | None = None,
        csp_report_only: bool = False,
        csp_nonce: bool = False,
        frame_options: str | None = "DENY",
        referrer_policy: str | None = "strict-origin-when-cross-origin",
        cross_origin_opener_policy: str | None = "same-origin",
        permissions_policy: str | Mapping[str, Any] | None = None,
        exclude_paths: Iterable[str] = (),
        *,
        content_type_options: bool = True,
        cross_origin_embedder_policy: str | None = None,
        cross_origin_resource_policy: str | None = None,
        reporting_endpoints: Mapping[str, str] | None = None,
        permitted_cross_domain_policies: str | None = "none",
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {app!r}")
        self.app = asgi3(app)
        options: dict[str, Any] = {
            "hsts": hsts,
            "content_security_policy": content_security_policy,
            "csp_report_only": csp_report_only,
            "csp_nonce": csp_nonce,
            "frame_options": frame_options,
            "referrer_policy": referrer_policy,
            "cross_origin_opener_policy": cross_origin_opener_policy,
            "permissions_policy": permissions_policy,
            "content_type_options": content_type_options,
            "cross_origin_embedder_policy": cross_origin_embedder_policy,
            "cross_origin_resource_policy": cross_origin_resource_policy,
            "reporting_endpoints": reporting_endpoints,
            "permitted_cross_domain_policies": permitted_cross_domain_policies,
        }
        self._default = _Headers(**options)
        self.exclude_paths = PathMatcher(exclude_paths, "exclude_paths")
        routes: list[tuple[PathMatcher, _Headers]] = []
        if overrides is not None:
            if not isinstance(overrides, Mapping):
                raise TypeError(f"overrides must be a dict of path to options, got {overrides!r}")
            for pattern, changes in overrides.items():
                if not isinstance(changes, Mapping):
                    raise TypeError(f"overrides[{pattern!r}] must be a dict of options")
                unknown = [k for k in changes if k not in _OPTION_NAMES]
                if unknown:
                    raise ValueError(
                        f"overrides[{pattern!r}]: unknown option {unknown[0]!r}; "
                        f"valid: {', '.join(_OPTION_NAMES)}"
                    )
                try:
                    headers = _Headers(**{**options, **changes})
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"overrides[{pattern!r}]: {exc}") from None
                routes.append((PathMatcher([pattern], "overrides"), headers))
        self._overrides = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self._default
        if self._overrides or self.exclude_paths:
            path = scope["path"]
            if self.exclude_paths and self.exclude_paths(path):
                await self.app(scope, receive, send)
                return
            for matcher, candidate in self._overrides:
                if matcher(path):
                    headers = candidate
                    break
        pairs = headers.secure if scope.get("scheme") == "https" else headers.plain
        names = headers.names
        lengths = headers.lengths
        if headers.csp_name is not None:
            nonce = secrets.token_urlsafe(16)
            state = scope.get("state")
            if state is None:
                state = scope["state"] = {}
            state[NONCE_KEY] = nonce
            pairs = (*pairs, (headers.csp_name, nonce.encode("ascii").join(headers.csp_pieces)))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message, raw = copy_start(message)
                present: set[bytes] | None = None
                for key, _ in raw:
                    if len(key) not in lengths:
                        continue
                    lowered = key.lower()
                    if lowered in names:
                        if present is None:
                            present = set()
                        present.add(lowered)
                if present is None:
                    raw.extend(pairs)
                else:
                    raw.extend(pair for pair in pairs if pair[0] not in present)
            await send(message)

        await self.app(scope, receive, send_with_headers)
