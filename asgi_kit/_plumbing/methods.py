"""HTTP request methods: one normaliser for matching and for labels.

RFC 9110 §9.1 makes methods case-sensitive, and servers pass them through
as the client wrote them.  A rule for ``POST`` must not be bypassed by
``post``, and metrics, traces and logs must agree on one label, so every
asgi_kit middleware compares and reports :func:`normalize_method`'s answer:
the registered methods (and ``PATCH``/``QUERY``) in upper case whatever the
client's case, any other (extension) method as sent.
"""

from __future__ import annotations

from collections.abc import Iterable

from .headers import TOKEN_RE

__all__ = ["KNOWN_METHODS", "OTHER_METHOD", "method_label", "normalize_method", "normalize_methods"]

#: The methods OpenTelemetry's semantic conventions (and RFC 9110, RFC 5789,
#: the QUERY draft) define.  Others are reported as :data:`OTHER_METHOD`.
KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE")
)
#: The label of a method outside :data:`KNOWN_METHODS` (bounded cardinality).
OTHER_METHOD = "_OTHER"


def normalize_method(method: str) -> str:
    """``method`` as every middleware matches it: known methods upper-cased."""
    if method in KNOWN_METHODS:
        return method
    upper = method.upper()
    return upper if upper in KNOWN_METHODS else method


def method_label(method: str, known: frozenset[str] = KNOWN_METHODS) -> str:
    """The bounded label of ``method``: normalised, or ``_OTHER`` outside ``known``."""
    if method in known:
        return method
    upper = method.upper()
    return upper if upper in known else OTHER_METHOD


def normalize_methods(methods: Iterable[str], option: str) -> frozenset[str]:
    """Validate configured methods (tokens) and normalise them; ``option`` names errors."""
    if isinstance(methods, str):
        raise TypeError(f"{option} must be a list of method names, not a single string")
    out: set[str] = set()
    for method in methods:
        if not isinstance(method, str):
            raise TypeError(f"{option} must contain strings, got {method!r}")
        if not TOKEN_RE.fullmatch(method):
            raise ValueError(f"{option}: {method!r} is not an HTTP method")
        out.add(normalize_method(method))
    return frozenset(out)
