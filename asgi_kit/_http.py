"""Shared HTTP/ASGI helpers: the import surface every asgi_kit module uses.

The code lives in the private plumbing package :mod:`asgi_kit._plumbing`
(one module per job: header scans, copy-on-write start rewrites, option
checks, bounded caches, methods, hosts, q-values, cookies, canned
responses); this module re-exports the names other modules import from it,
and holds path matching for ``exclude_paths``-style options and the
framework route-template lookup.

Parsers of client input never raise on hostile input: they skip what they
cannot read.  Builders of output (``Set-Cookie``, option validation) raise
naming what is wrong.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from ._plumbing.cookies import (
    SameSite,
    cookie_attributes,
    delete_cookie_header,
    get_cookie,
    iter_cookie_pairs,
    set_cookie_header,
)
from ._plumbing.headers import (
    MAX_LIST_ITEMS,
    TCHARS,
    TOKEN_BYTES_RE,
    TOKEN_RE,
    HeaderScan,
    header_list,
    header_value,
    header_values,
    normalize_header_name,
    split_comma_list,
)
from ._plumbing.hosts import client_host, scope_scheme
from ._plumbing.options import asgi3
from ._plumbing.qvalues import parse_qvalues
from ._plumbing.responses import (
    APPLICATION_JSON,
    TEXT_PLAIN,
    refuse_websocket,
    send_json,
    send_response,
)
from ._plumbing.start import MutableHeaders, StartRewrite, copy_start
from .types import Scope

# Kept under their old private names for the modules that import them.
_iter_cookie_pairs = iter_cookie_pairs
_TCHARS = TCHARS
_TOKEN_RE = TOKEN_RE
_TOKEN_BYTES_RE = TOKEN_BYTES_RE

__all__ = [
    "APPLICATION_JSON",
    "MAX_LIST_ITEMS",
    "ROUTE_KEY",
    "TEXT_PLAIN",
    "HeaderScan",
    "MutableHeaders",
    "PathMatcher",
    "SameSite",
    "StartRewrite",
    "asgi3",
    "client_host",
    "cookie_attributes",
    "copy_start",
    "delete_cookie_header",
    "get_cookie",
    "header_list",
    "header_value",
    "header_values",
    "iter_cookie_pairs",
    "normalize_header_name",
    "parse_qvalues",
    "refuse_websocket",
    "route_template",
    "scope_scheme",
    "send_json",
    "send_response",
    "set_cookie_header",
    "split_comma_list",
]


# --------------------------------------------------------------------------- paths


class PathMatcher:
    """Matches request paths against exact paths and glob patterns.

    A pattern without wildcards matches that path exactly; ``/prefix/*``
    matches everything under ``/prefix/``; any other pattern uses
    :func:`fnmatch.fnmatchcase` rules (``*`` also matches ``/``).
    Everything is compiled once; a call is a set look-up, a ``startswith``
    and at most one regex match.
    """

    __slots__ = ("_exact", "_prefixes", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str], option: str = "paths") -> None:
        if isinstance(patterns, str):
            raise TypeError(f"{option} must be a list of paths, not a single string")
        try:
            self.patterns: tuple[str, ...] = tuple(patterns)
        except TypeError:
            kind = type(patterns).__name__
            raise TypeError(f"{option} must be a list of paths, got {kind}") from None
        exact: set[str] = set()
        prefixes: list[str] = []
        globs: list[str] = []
        for pattern in self.patterns:
            if not isinstance(pattern, str) or not pattern.startswith(("/", "*")):
                raise ValueError(f"{option}: {pattern!r} must be a path starting with '/'")
            head = pattern[:-1]
            if not any(c in pattern for c in "*?["):
                exact.add(pattern)
            elif pattern.endswith("*") and not any(c in head for c in "*?["):
                prefixes.append(head)
            else:
                globs.append(fnmatch.translate(pattern))
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._regex = re.compile("|".join(globs)) if globs else None

    def __call__(self, path: str) -> bool:
        if path in self._exact:
            return True
        if self._prefixes and path.startswith(self._prefixes):
            return True
        return self._regex is not None and self._regex.match(path) is not None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"PathMatcher({list(self.patterns)!r})"


# --------------------------------------------------------------------------- routes

#: Scope key where an integration (the Django adapter, a user's router) can
#: store the matched route template, e.g. ``"/items/<int:pk>"``.
ROUTE_KEY = "asgi_kit.route"


def route_template(scope: Scope) -> str | None:
    """The matched route template for ``scope``, or None when unknown.

    Read after the app has routed the request (at ``http.response.start`` or
    when the app returns).  Sources, in order: ``scope["asgi_kit.route"]``
    (set by asgi_kit's Django adapter or any integration), then
    ``scope["route"]`` as Starlette/FastAPI set it (its ``path_format``,
    prefixed with the mount's ``root_path``), or a plain string there, then
    Litestar's ``scope["path_template"]``.
    """
    explicit = scope.get(ROUTE_KEY)
    if isinstance(explicit, str) and explicit:
        return explicit
    route = scope.get("route")
    if route is None:
        # Litestar names the matched template (router prefixes included).
        template = scope.get("path_template")
        return template if isinstance(template, str) and template else None
    if isinstance(route, str):
        return route or None
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            return None
    root = scope.get("root_path") or ""
    if root and isinstance(root, str):
        own = getattr(route, "path", None)
        if type(route).__name__ == "Mount" and isinstance(own, str) and root.endswith(own):
            # A Mount answering itself (static files, a non-routing sub-app):
            # its path_format already carries the prefix the match appended.
            root = root[: len(root) - len(own)]
        template = root.rstrip("/") + template
    return template or "/"
