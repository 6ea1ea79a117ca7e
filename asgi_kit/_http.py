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
from ._routes import ROUTE_KEY, route_template
from .types import Scope

# Kept under their old private names for the modules that import them.
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
    "normalize_path",
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

# A percent-escape; only those of unreserved characters (RFC 3986 §2.3) are
# decoded, since every router treats ``%61`` and ``a`` alike while ``%2F``
# must stay a character of one segment.
_ESCAPE_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _decode_unreserved(match: re.Match[str]) -> str:
    code = int(match.group()[1:], 16)
    return chr(code) if code in _UNRESERVED else match.group().upper()


def normalize_path(path: str) -> str:
    """The canonical spelling of a request path, for matching it against patterns.

    Repeated slashes collapse, ``.`` segments go, ``..`` segments remove the
    segment before them (never above ``/``), percent-escapes of unreserved
    characters are decoded (``%61`` is ``a``) and a trailing slash is dropped
    (``/x/`` is ``/x``; ``/`` stays).  A path that needs none of that is
    returned as the same object, after four substring tests, so callers can
    tell "already canonical" by identity.  Anything not starting with ``/``
    (``*`` of ``OPTIONS *``) is returned unchanged.
    """
    if (
        not ("//" in path or "/." in path or "%" in path or (path[-1:] == "/" and path != "/"))
        or path[:1] != "/"
    ):
        return path
    if "%" in path:
        path = _ESCAPE_RE.sub(_decode_unreserved, path)
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "" or segment == ".":
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


def _trim_slash(path: str) -> str:
    if len(path) > 1 and path[-1] == "/":
        return path.rstrip("/") or "/"
    return path


class PathMatcher:
    """Matches request paths against exact paths and glob patterns.

    A pattern without wildcards matches that path; ``/prefix/*`` matches
    ``/prefix`` and everything under it; any other pattern uses
    :func:`fnmatch.fnmatchcase` rules (``*`` also matches ``/``).

    Paths are compared in their canonical spelling (:func:`normalize_path`),
    the one routers run: ``//x``, ``/./x``, ``/%78`` and ``/x/`` are ``/x``.
    ``exact=True`` compares the raw ``scope["path"]`` instead.  The two ways
    of asking differ in which way they err:

    * :meth:`match` (what a rate-limit rule asks: "does this request count?")
      is true when the canonical *or* the raw spelling matches, so no
      spelling a framework might route to a matched handler escapes it;
    * calling the matcher (what ``exclude_paths`` asks: "may this request
      skip the middleware?") is true only when the canonical spelling
      matches *and* so does the spelling the router resolved: the route
      template when ``scope`` carries one (Starlette's ``scope["route"]``,
      Litestar's ``path_template``, the Django adapter's
      ``scope["asgi_kit.route"]``), else the raw path with only a trailing
      slash ignored.  So ``//health`` is excluded where the framework routes
      it to ``/health`` (Litestar) and counted where it does not, and
      ``/health/../admin`` never passes for ``/health/*``.

    Everything is compiled once; a call on a canonical path is four
    substring tests, a set look-up, a ``startswith`` and at most one regex
    match.  Callers matching several patterns sets against one request pass
    ``normal=normalize_path(path)`` so the path is normalised once.
    """

    __slots__ = ("_exact", "_prefixes", "_regex", "exact", "patterns")

    def __init__(
        self, patterns: Iterable[str], option: str = "paths", *, exact: bool = False
    ) -> None:
        if isinstance(patterns, str):
            raise TypeError(f"{option} must be a list of paths, not a single string")
        try:
            self.patterns: tuple[str, ...] = tuple(patterns)
        except TypeError:
            kind = type(patterns).__name__
            raise TypeError(f"{option} must be a list of paths, got {kind}") from None
        if not isinstance(exact, bool):
            raise TypeError(f"{option}: exact must be a bool, got {exact!r}")
        self.exact = exact
        exact_paths: set[str] = set()
        prefixes: list[str] = []
        globs: list[str] = []
        for pattern in self.patterns:
            if not isinstance(pattern, str) or not pattern.startswith(("/", "*")):
                raise ValueError(f"{option}: {pattern!r} must be a path starting with '/'")
            head = pattern[:-1]
            if not any(c in pattern for c in "*?["):
                exact_paths.add(pattern if exact else normalize_path(pattern))
            elif pattern.endswith("*") and not any(c in head for c in "*?["):
                if exact:
                    prefixes.append(head)
                else:
                    # "/static/*" covers "/static" too: "/static/" is the same path.
                    base = normalize_path(head)
                    exact_paths.add(base)
                    prefixes.append(base if base.endswith("/") else base + "/")
            else:
                globs.append(fnmatch.translate(pattern if exact else normalize_path(pattern)))
        self._exact = frozenset(exact_paths)
        self._prefixes = tuple(prefixes)
        self._regex = re.compile("|".join(globs)) if globs else None

    def _test(self, path: str) -> bool:
        if path in self._exact:
            return True
        if self._prefixes and path.startswith(self._prefixes):
            return True
        return self._regex is not None and self._regex.match(path) is not None

    def match(self, path: str, normal: str | None = None) -> bool:
        """Whether any spelling of ``path`` (canonical or raw) matches: for rules."""
        if self.exact:
            normal = path
        elif normal is None:
            normal = normalize_path(path)
        # _test inlined: this runs on every request a path-scoped rule sees.
        if (
            normal in self._exact
            or (self._prefixes and normal.startswith(self._prefixes))
            or (self._regex is not None and self._regex.match(normal) is not None)
        ):
            return True
        return normal is not path and self._test(path)

    def __call__(self, path: str, scope: Scope | None = None, normal: str | None = None) -> bool:
        """Whether ``path`` is excluded: its canonical and its routed spelling match."""
        if self.exact:
            return self._test(path)
        if normal is None:
            normal = normalize_path(path)
        if not self._test(normal):
            return False
        if normal is path:
            return True
        template = route_template(scope) if scope is not None else None
        if template is not None:
            return self._test(normalize_path(template))
        return self._test(_trim_slash(path))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        if self.exact:
            return f"PathMatcher({list(self.patterns)!r}, exact=True)"
        return f"PathMatcher({list(self.patterns)!r})"
