"""Validation and serialisation of the header values SecurityHeadersMiddleware sends.

Content-Security-Policy (CSP Level 3), Permissions-Policy (a Structured Field
dictionary, RFC 9651) and Reporting-Endpoints are built here once, at
construction; every mistake a browser would silently ignore (an unknown
directive, ``self`` without quotes, a misspelt feature) is a ``ValueError``
naming the option instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = [
    "CSP_DIRECTIVES",
    "OWASP_PERMISSIONS_POLICY",
    "PERMISSIONS_FEATURES",
    "Policy",
    "check_header_text",
    "parse_csp",
    "permissions_policy_value",
    "reporting_endpoints_value",
]

# CSP Level 3 directives, plus the Trusted Types and WebRTC ones browsers ship
# and the deprecated ones still read by some (block-all-mixed-content).
_SOURCE_LIST: Final = frozenset(
    {
        "default-src", "child-src", "connect-src", "fenced-frame-src", "font-src", "frame-src",
        "img-src", "manifest-src", "media-src", "object-src", "script-src", "script-src-elem",
        "script-src-attr", "style-src", "style-src-elem", "style-src-attr", "worker-src",
        "base-uri", "form-action", "frame-ancestors",
    }
)  # fmt: skip
_FLAGS: Final = frozenset({"upgrade-insecure-requests", "block-all-mixed-content"})
_OTHER: Final = frozenset(
    {"sandbox", "report-uri", "report-to", "require-trusted-types-for", "trusted-types", "webrtc"}
)
#: Every directive name ``content_security_policy`` accepts.
CSP_DIRECTIVES: Final = _SOURCE_LIST | _FLAGS | _OTHER

# Keywords that must be single-quoted in a source list.
_KEYWORDS: Final = frozenset(
    {
        "self", "none", "unsafe-inline", "unsafe-eval", "strict-dynamic", "unsafe-hashes",
        "report-sample", "wasm-unsafe-eval", "unsafe-allow-redirects", "inline-speculation-rules",
        "trusted-types-eval", "report-sha256", "report-sha384", "report-sha512",
    }
)  # fmt: skip
_HASH_RE = re.compile(r"'(?:nonce|sha256|sha384|sha512)-[A-Za-z0-9+/\-_]+={0,2}'", re.ASCII)
# scheme-source ("https:", "data:") or host-source ([scheme://]host[:port][path]).
_SCHEME_SOURCE_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:", re.ASCII)
_HOST_SOURCE_RE = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.\-]*://)?"
    r"(?:\*|(?:\*\.)?[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?:[0-9]{1,5}|\*))?"
    # ";" and "," would end the directive or the policy: CSP3 requires them
    # percent-encoded in a path.
    r"(?:/[!$&'()*+=:@%A-Za-z0-9\-._~/]*)?",
    re.ASCII,
)
_SANDBOX_TOKENS: Final = frozenset(
    {
        "allow-downloads", "allow-forms", "allow-modals", "allow-orientation-lock",
        "allow-pointer-lock", "allow-popups", "allow-popups-to-escape-sandbox",
        "allow-presentation", "allow-same-origin", "allow-scripts",
        "allow-storage-access-by-user-activation", "allow-top-navigation",
        "allow-top-navigation-by-user-activation", "allow-top-navigation-to-custom-protocols",
    }
)  # fmt: skip
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-_.]+", re.ASCII)
# No "," or ";" (they would end the value), no quotes or spaces.
_URI_RE = re.compile(r"[!#$%&()*+\-./0-9:=?@A-Z\[\]_a-z~]+", re.ASCII)
# Visible ASCII and spaces: nothing that could end a header line or confuse a parser.
_HEADER_TEXT_RE = re.compile(r"[\x20-\x7e]*", re.ASCII)


def check_header_text(value: str, option: str) -> bytes:
    """``value`` as header bytes; CR, LF, NUL, other controls and non-ASCII are refused."""
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a str, got {value!r}")
    if _HEADER_TEXT_RE.fullmatch(value) is None:
        raise ValueError(
            f"{option}: {value!r} contains a control or non-ASCII character, "
            "which cannot be sent in a header"
        )
    return value.strip().encode("ascii")


class Policy:
    """A validated CSP: directive names in order, each with its values."""

    __slots__ = ("directives",)

    def __init__(self, directives: dict[str, list[str]]) -> None:
        self.directives = directives

    def copy(self) -> Policy:
        return Policy({name: list(values) for name, values in self.directives.items()})

    def serialise(self) -> str:
        parts = []
        for name, values in self.directives.items():
            parts.append(" ".join([name, *values]) if values else name)
        return "; ".join(parts)

    def add_nonce(self, marker: str) -> None:
        """Allow ``'nonce-<marker>'`` for scripts and styles (CSP3 §6.7.2 fallbacks).

        ``script-src``/``style-src`` are created from ``default-src`` when
        absent (a directive replaces its fallback entirely, so the other
        sources must be copied), and the ``-elem`` variants, which override
        them for elements, get the nonce too.  ``'none'`` is dropped from a
        list that gains a nonce: it only means "nothing" when alone.
        """
        d = self.directives
        source = f"'nonce-{marker}'"
        default = d.get("default-src")
        for name in ("script-src", "style-src"):
            if name not in d:
                d[name] = list(default) if default is not None else ["'self'"]
            for target in (name, f"{name}-elem"):
                values = d.get(target)
                if values is not None:
                    d[target] = [v for v in values if v != "'none'"] + [source]


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_values(directive: str, values: list[str], option: str) -> None:
    where = f"{option}: {directive}"
    if directive in _FLAGS:
        if values:
            raise ValueError(f"{where} takes no value, got {' '.join(values)!r}")
        return
    if directive in _SOURCE_LIST:
        for value in values:
            bare = value.lower()
            if bare in _KEYWORDS:
                raise ValueError(f"{where}: {value!r} must be quoted: write \"'{bare}'\"")
            if value.startswith("'"):
                if value[1:-1].lower() in _KEYWORDS and value.endswith("'"):
                    continue
                if _HASH_RE.fullmatch(value):
                    continue
                raise ValueError(f"{where}: {value!r} is not a CSP keyword, nonce or hash")
            if (
                value != "*"
                and _SCHEME_SOURCE_RE.fullmatch(value) is None
                and _HOST_SOURCE_RE.fullmatch(value) is None
            ):
                raise ValueError(f"{where}: {value!r} is not a valid source expression")
        if "'none'" in [v.lower() for v in values] and len(values) > 1:
            raise ValueError(f"{where}: 'none' must be the only source when present")
        return
    if directive == "sandbox":
        for value in values:
            if value not in _SANDBOX_TOKENS:
                raise ValueError(f"{where}: unknown flag {value!r}{_hint(value, _SANDBOX_TOKENS)}")
    elif directive == "report-to":
        if len(values) != 1 or _TOKEN_RE.fullmatch(values[0]) is None:
            raise ValueError(f"{where} takes one endpoint name, got {' '.join(values)!r}")
    elif directive == "report-uri":
        if not values or any(_URI_RE.fullmatch(v) is None for v in values):
            raise ValueError(f"{where} takes one or more URIs, got {' '.join(values)!r}")
    elif directive == "require-trusted-types-for":
        if values != ["'script'"]:
            raise ValueError(f"{where} takes \"'script'\", got {' '.join(values)!r}")
    else:  # trusted-types, webrtc
        for value in values:
            if not (_TOKEN_RE.fullmatch(value) or value in ("*", "'none'", "'allow-duplicates'")):
                raise ValueError(f"{where}: {value!r} is not a valid value")


def parse_csp(value: object, option: str = "content_security_policy") -> Policy:
    """Validate a policy given as a string or a mapping of directive to values.

    Mapping values may be a space-separated string, a list of strings, or
    ``True``/an empty value for directives without values
    (``upgrade-insecure-requests``).  Directive names may use ``_`` for ``-``.
    """
    items: list[tuple[str, list[str]]] = []
    if isinstance(value, str):
        check_header_text(value, option)
        if "," in value:
            raise ValueError(
                f"{option}: ',' separates policies; give one policy with directives split by ';'"
            )
        for part in value.split(";"):
            words = part.split()
            if words:
                items.append((words[0], words[1:]))
    elif isinstance(value, Mapping):
        for name, raw in value.items():
            if not isinstance(name, str):
                raise TypeError(f"{option}: directive names must be strings, got {name!r}")
            values: list[str]
            if raw is True or raw is None:
                values = []
            elif isinstance(raw, str):
                values = check_header_text(raw, f"{option}: {name}").decode().split()
            elif isinstance(raw, Iterable) and not isinstance(raw, (bytes, bytearray)):
                values = []
                for item in raw:
                    if not isinstance(item, str):
                        raise TypeError(f"{option}: {name} values must be strings, got {item!r}")
                    values.extend(check_header_text(item, f"{option}: {name}").decode().split())
            else:
                raise TypeError(
                    f"{option}: {name} must be a string, a list of strings or True, got {raw!r}"
                )
            items.append((name.replace("_", "-"), values))
    else:
        raise TypeError(f"{option} must be a str or a dict of directives, got {value!r}")
    directives: dict[str, list[str]] = {}
    for name, values in items:
        lowered = name.lower()
        if lowered not in CSP_DIRECTIVES:
            raise ValueError(
                f"{option}: unknown directive {name!r}{_hint(lowered, CSP_DIRECTIVES)}"
            )
        if lowered in directives:
            raise ValueError(f"{option}: directive {lowered!r} given twice")
        _check_values(lowered, values, option)
        directives[lowered] = values
    if not directives:
        raise ValueError(f"{option}: the policy has no directives")
    return Policy(directives)


# The features of the W3C Permissions Policy registry that browsers ship or
# have shipped; client hints (``ch-*``) are accepted by prefix.
PERMISSIONS_FEATURES: Final = frozenset(
    {
        "accelerometer", "all-screens-capture", "ambient-light-sensor", "attribution-reporting",
        "autoplay", "bluetooth", "browsing-topics", "camera", "captured-surface-control",
        "clipboard-read", "clipboard-write", "compute-pressure", "cross-origin-isolated",
        "deferred-fetch", "digital-credentials-get", "direct-sockets", "display-capture",
        "document-domain", "encrypted-media", "execution-while-not-rendered",
        "execution-while-out-of-viewport", "focus-without-user-activation", "fullscreen",
        "gamepad", "geolocation", "gyroscope", "hid", "identity-credentials-get",
        "idle-detection", "interest-cohort", "join-ad-interest-group", "keyboard-map",
        "language-detector", "local-fonts", "local-network-access", "magnetometer",
        "microphone", "midi", "otp-credentials", "payment", "picture-in-picture",
        "private-state-token-issuance", "private-state-token-redemption",
        "publickey-credentials-create", "publickey-credentials-get", "rewriter",
        "run-ad-auction", "screen-wake-lock", "serial", "shared-storage",
        "shared-storage-select-url", "smart-card", "speaker-selection", "storage-access",
        "summarizer", "sync-xhr", "translator", "unload", "usb", "vertical-scroll", "web-share",
        "window-management", "writer", "xr-spatial-tracking",
    }
)  # fmt: skip

#: The Permissions-Policy the OWASP Secure Headers Project recommends: every
#: powerful feature off, synchronous XHR for the page's own origin only.
#: Pass it (or a copy you edit) as ``permissions_policy``.
_OWASP_DISABLED = (
    "accelerometer", "autoplay", "camera", "clipboard-read", "clipboard-write",
    "cross-origin-isolated", "display-capture", "encrypted-media", "fullscreen", "gamepad",
    "geolocation", "gyroscope", "hid", "idle-detection", "interest-cohort", "keyboard-map",
    "magnetometer", "microphone", "midi", "payment", "picture-in-picture",
    "publickey-credentials-get", "screen-wake-lock", "serial", "unload", "usb", "web-share",
    "xr-spatial-tracking",
)  # fmt: skip
OWASP_PERMISSIONS_POLICY: Final[Mapping[str, tuple[str, ...]]] = {
    **dict.fromkeys(_OWASP_DISABLED, ()),
    "sync-xhr": ("self",),
}

_FEATURE_RE = re.compile(r"[a-z][a-z0-9\-]*", re.ASCII)
_ORIGIN_RE = re.compile(
    r"[a-z][a-z0-9+.\-]*://(?:\*\.)?(?:\[[0-9a-f:.]+\]|[a-z0-9\-._~]+)(?::[0-9]{1,5})?",
    re.ASCII | re.IGNORECASE,
)
# One member of the dictionary as written in a string: name=item or name=(items).
_MEMBER_RE = re.compile(
    r'\s*([a-z][a-z0-9\-]*)=(\*|self|\((?:\s*(?:\*|self|src|"[^"\\\x00-\x1f]*")\s*)*\))\s*',
    re.ASCII,
)


def permissions_policy_value(value: object, option: str = "permissions_policy") -> bytes:
    """The ``Permissions-Policy`` bytes for a string or a mapping of feature to allowlist.

    Mapping values are an iterable of ``"self"``, ``"src"``, ``"*"`` and
    origins (an empty one disables the feature), or a single such string.
    Feature names of a mapping must be known (see :data:`PERMISSIONS_FEATURES`);
    a string is checked for syntax only, so it can name features newer
    than this list.
    """
    if isinstance(value, str):
        raw = check_header_text(value, option).decode()
        for member in raw.split(","):
            if _MEMBER_RE.fullmatch(member) is None:
                raise ValueError(
                    f"{option}: {member.strip()!r} is not 'feature=()', 'feature=(self "
                    "\"https://origin\")' or 'feature=*'"
                )
        return raw.encode()
    if not isinstance(value, Mapping):
        raise TypeError(f"{option} must be a str or a dict of feature to allowlist, got {value!r}")
    members = []
    for name, allow in value.items():
        if not isinstance(name, str) or _FEATURE_RE.fullmatch(name) is None:
            raise ValueError(f"{option}: {name!r} is not a feature name")
        if name not in PERMISSIONS_FEATURES and not name.startswith("ch-"):
            hint = _hint(name, PERMISSIONS_FEATURES)
            raise ValueError(
                f"{option}: unknown feature {name!r}{hint}; give the policy as a string to "
                "use a feature this list does not know"
            )
        entries = [allow] if isinstance(allow, str) else allow
        if not isinstance(entries, Iterable):
            raise TypeError(f"{option}: {name} must be a list of origins or keywords")
        items = []
        for entry in entries:
            if not isinstance(entry, str):
                raise TypeError(f"{option}: {name} entries must be strings, got {entry!r}")
            if entry in ("self", "src", "*"):
                items.append(entry)
            elif entry.strip("'") in ("self", "src", "none"):
                raise ValueError(
                    f"{option}: {name}: write self or src without quotes (and () for none), "
                    f"got {entry!r}"
                )
            elif _ORIGIN_RE.fullmatch(entry):
                items.append(f'"{entry}"')
            else:
                raise ValueError(f"{option}: {name}: {entry!r} is not an origin, self, src or *")
        if items == ["*"]:
            members.append(f"{name}=*")
        else:
            members.append(f"{name}=({' '.join(items)})")
    if not members:
        raise ValueError(f"{option}: the policy names no features")
    return ", ".join(members).encode("ascii")


_ENDPOINT_NAME_RE = re.compile(r"[a-z*][a-z0-9_\-.*]*", re.ASCII)


def reporting_endpoints_value(value: object, option: str = "reporting_endpoints") -> bytes:
    """``Reporting-Endpoints`` bytes for a mapping of endpoint name to URL."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{option} must be a dict of endpoint name to URL, got {value!r}")
    members = []
    for name, url in value.items():
        if not isinstance(name, str) or _ENDPOINT_NAME_RE.fullmatch(name) is None:
            raise ValueError(f"{option}: {name!r} is not an endpoint name (a lower-case token)")
        if not isinstance(url, str) or _URI_RE.fullmatch(url) is None or '"' in url:
            raise ValueError(f"{option}: {name}: {url!r} is not a URL")
        if not url.startswith(("https://", "/", "http://localhost")):
            raise ValueError(
                f"{option}: {name}: {url!r} must be an https:// URL or a path "
                "(browsers only report to secure endpoints)"
            )
        members.append(f'{name}="{url}"')
    if not members:
        raise ValueError(f"{option}: no endpoints given")
    return ", ".join(members).encode("ascii")
