"""``Rule``: a parsed limit plus which requests it applies to."""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

from asgi_kit._http import _TCHARS, PathMatcher, normalize_path, route_template
from asgi_kit.types import Scope

from .keys import KeyFunc

__all__ = ["ALGORITHMS", "Algorithm", "LimitFunc", "Rule", "parse_limit", "route_key"]

#: A limit that depends on the request: ``(scope) -> "N/period" | None``, sync or async.
LimitFunc = Callable[[Scope], "str | Awaitable[str | None] | None"]

Algorithm = Literal["gcra", "sliding_window", "fixed_window"]
#: Algorithm name -> the small integer the Redis script dispatches on.
ALGORITHMS: dict[str, int] = {"gcra": 1, "sliding_window": 2, "fixed_window": 3}

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_CANONICAL = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
# "100/minute", "100/minutes", "10/5 minutes", "100 per minute", "2 per 30s".
_LIMIT_RE = re.compile(
    r"\s*(\d{1,12})\s*(?:/|\s+per\s+)\s*(?:(\d{1,9})\s*)?"
    r"(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)\s*",
    re.ASCII | re.IGNORECASE,
)
MAX_COUNT = 10**9
MAX_PERIOD = 366 * 86400
_NAME_CHARS = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def parse_limit(text: str) -> tuple[int, int]:
    """Parse ``"N/second|minute|hour|day"`` into ``(count, period_seconds)``.

    Accepted forms (case-insensitive, plurals allowed): ``"100/minute"``,
    ``"100/minutes"``, ``"10/5 minutes"``, ``"100 per minute"``,
    ``"2 per 30 seconds"``; units may be abbreviated (``s``, ``sec``, ``m``,
    ``min``, ``h``, ``hr``, ``d``).  Raises :class:`ValueError` naming
    ``text`` for anything else, including a zero count or period.
    """
    if not isinstance(text, str):
        raise TypeError(f"limit must be a string like '100/minute', got {text!r}")
    match = _LIMIT_RE.fullmatch(text)
    unit = _UNITS.get(match.group(3).lower().rstrip("s") or "s") if match else None
    if match is None or unit is None:
        raise ValueError(
            f"limit {text!r} is not a rate limit: expected 'N/second|minute|hour|day', "
            "'N/5 minutes' or 'N per minute'"
        )
    count = int(match.group(1))
    period = int(match.group(2) or 1) * unit
    if not 0 < count <= MAX_COUNT:
        raise ValueError(f"limit {text!r}: the count must be between 1 and {MAX_COUNT}")
    if not 0 < period <= MAX_PERIOD:
        raise ValueError(f"limit {text!r}: the period must be between 1 second and 366 days")
    return count, period


# "{item_id:int}" (Starlette, Litestar) and "{item_id}" name the same parameter.
_CONVERTOR_RE = re.compile(r"\{([^{}:]+):[^{}]*\}")


def route_key(template: str) -> str:
    """A route template in the form rules compare: canonical, without ``{x:type}`` types."""
    template = normalize_path(template)
    if ":" in template:
        template = _CONVERTOR_RE.sub(r"{\1}", template)
    return template


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> tuple[int, int]:
    # Limit strings a limit function returns (one per plan or user tier) are
    # parsed once each; the cache is bounded so varied strings cannot grow it.
    return parse_limit(text)


def _key_identity(key: KeyFunc | None) -> str | None:
    """A name for a key function that is the same in every process."""
    if key is None:
        return None
    module = getattr(key, "__module__", None) or type(key).__module__
    qualname = getattr(key, "__qualname__", None) or type(key).__qualname__
    return f"{module}.{qualname}"


def _period_text(period: int) -> str:
    for seconds in (86400, 3600, 60, 1):
        if period % seconds == 0:
            n = period // seconds
            word = _CANONICAL[seconds]
            return word if n == 1 else f"{n}{word}s"
    raise AssertionError("unreachable: periods are whole seconds")  # pragma: no cover


class Rule:
    """One rate limit and the requests it applies to.

    ``limit`` is ``"N/second|minute|hour|day"`` (``"100/minute"``,
    ``"10/5 minutes"``, ``"100 per minute"``), or a callable ``(scope) -> str |
    None`` (sync or async) returning such a string per request, for limits
    that depend on the user or plan (None: this request is not limited by the
    rule; each distinct limit has its own buckets).  ``path`` restricts the rule to
    an exact path or a glob (``"/api/*"``), or a list of them, matched in
    every spelling a router treats as that path (``//x``, ``/./x``, ``/x/``,
    ``/%78`` count for ``/x``; ``exact_path=True`` compares the raw path
    instead).  ``route`` restricts it to a route template instead
    (``"/items/{item_id}"``, Django's ``"/items/<int:pk>"``), or a list of
    them, matching every path the framework routes there; see
    :doc:`ratelimit` for where the route is known.  ``methods`` restricts it
    to a set of HTTP methods, compared case-insensitively; a rule listing
    ``GET`` also counts ``HEAD`` (which frameworks answer with the GET
    handler) unless ``head=False``; WebSocket handshakes count as ``GET``.
    ``key`` overrides the middleware's key function for this rule.
    ``algorithm`` is ``"gcra"`` (smooth, allows a burst of N),
    ``"sliding_window"`` or ``"fixed_window"``.  ``cost`` is how many units
    one request uses; ``unit`` names what the quota then counts (the IETF
    ``qu`` parameter, default ``"units"`` when ``cost`` is not 1).

    ``name`` labels the rule in the IETF headers and in storage keys; by
    default it is derived from the limit (``"100/minute"``).  Every argument
    is validated here; a bad one raises :class:`ValueError`/:class:`TypeError`
    naming it.
    """

    __slots__ = (
        "_given_name",
        "_matcher",
        "_methods",
        "_routes",
        "algorithm",
        "algorithm_id",
        "cost",
        "count",
        "dynamic",
        "exact_path",
        "head",
        "ident",
        "key",
        "limit",
        "methods",
        "name",
        "path",
        "period",
        "route",
        "unit",
    )

    def __init__(
        self,
        limit: str | LimitFunc,
        path: str | Iterable[str] | None = None,
        methods: Iterable[str] | None = None,
        key: KeyFunc | None = None,
        algorithm: Algorithm = "gcra",
        cost: int = 1,
        route: str | Iterable[str] | None = None,
        *,
        name: str | None = None,
        exact_path: bool = False,
        head: bool = True,
        unit: str | None = None,
    ) -> None:
        self.limit = limit
        # A callable limit is resolved per request into a variant of this rule
        # (:meth:`with_limit`); until then count and period are 0.
        self.dynamic = callable(limit)
        if self.dynamic:
            self.count, self.period = 0, 0
        elif isinstance(limit, str):
            self.count, self.period = parse_limit(limit)
        else:
            raise TypeError(
                f"limit must be a string like '100/minute' or a callable (scope) -> str | None, "
                f"got {limit!r}"
            )

        if not isinstance(exact_path, bool):
            raise TypeError(f"exact_path must be a bool, got {exact_path!r}")
        self.exact_path = exact_path
        self.path = path
        if path is None:
            self._matcher: PathMatcher | None = None
        else:
            self._matcher = PathMatcher(
                [path] if isinstance(path, str) else path, "path", exact=exact_path
            )

        self.route = route
        self._routes: frozenset[str] | None = None
        if route is not None:
            if path is not None:
                raise ValueError("give a rule either path= or route=, not both")
            templates: Any = [route] if isinstance(route, str) else route
            if isinstance(templates, bytes) or not isinstance(templates, Iterable):
                raise TypeError(f"route must be a route template or a list of them, got {route!r}")
            routes = set()
            for template in templates:
                if not isinstance(template, str) or not template.startswith("/"):
                    raise ValueError(f"route: {template!r} must be a template starting with '/'")
                routes.add(route_key(template))
            if not routes:
                raise ValueError("route must not be empty (use None for every route)")
            self._routes = frozenset(routes)

        self.methods: frozenset[str] | None
        if methods is None:
            self.methods = None
        else:
            if isinstance(methods, (str, bytes)):
                raise TypeError(f"methods must be a set of method names, not {methods!r}")
            names = set()
            for method in methods:
                if (
                    not isinstance(method, str)
                    or not method
                    or not all(ord(c) in _TCHARS for c in method)
                ):
                    raise ValueError(f"methods: {method!r} is not an HTTP method")
                names.add(method.upper())
            if not names:
                raise ValueError("methods must not be empty (use None for every method)")
            self.methods = frozenset(names)
        if not isinstance(head, bool):
            raise TypeError(f"head must be a bool, got {head!r}")
        self.head = head
        # What requests are compared against: HEAD runs the GET handler in
        # Starlette, Django and Litestar, so a GET rule that skipped it could
        # be walked around.
        self._methods = self.methods
        if self.methods is not None and head and "GET" in self.methods:
            self._methods = self.methods | {"HEAD"}

        if key is not None and not callable(key):
            raise TypeError(f"key must be a callable (scope) -> str | None, got {key!r}")
        self.key = key

        if algorithm not in ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}"
            )
        self.algorithm: Algorithm = algorithm
        self.algorithm_id = ALGORITHMS[algorithm]

        if isinstance(cost, bool) or not isinstance(cost, int):
            raise TypeError(f"cost must be an int, got {cost!r}")
        if cost < 1 or (not self.dynamic and cost > self.count):
            raise ValueError(
                f"cost must be between 1 and the limit's count ({self.count}), got {cost}"
            )
        self.cost = cost

        self._given_name = name
        if name is None:
            name = f"{self.count}/{_period_text(self.period)}" if not self.dynamic else "dynamic"
        elif not isinstance(name, str) or not name or not all(ord(c) in _NAME_CHARS for c in name):
            raise ValueError(
                f"name must be non-empty printable ASCII without '\"' or '\\', got {name!r}"
            )
        self.name = name

        if unit is not None and (
            not isinstance(unit, str) or not unit or not all(ord(c) in _NAME_CHARS for c in unit)
        ):
            raise ValueError(
                f"unit must be non-empty printable ASCII without '\"' or '\\', got {unit!r}"
            )
        # The IETF quota unit (`qu`): requests (the draft's default, not sent)
        # unless a request costs several units, which are then what q and r count.
        self.unit = unit if unit is not None else ("units" if cost != 1 else None)

        # Storage identity: the name, the algorithm (state shapes differ) and,
        # when the rule is scoped or has its own key function, a digest of
        # those, so two rules with the same limit on different paths or keys
        # never share a bucket.  Only process-independent text goes into it
        # (never id() or a default repr), so every worker computes the same.
        ident = f"{name}:{algorithm}"
        if (
            path is not None
            or methods is not None
            or key is not None
            or route is not None
            or self.dynamic
        ):
            parts: tuple[object, ...] = (
                self._matcher.patterns if self._matcher else None,
                sorted(self.methods or ()),
                _key_identity(key),
            )
            # Appended only when set, so existing rules keep their keys.
            if self._routes is not None:
                parts += (sorted(self._routes),)
            if self.dynamic:
                parts += ("limit", _key_identity(limit))  # type: ignore[arg-type]
            scope_text = repr(parts)
            ident += ":" + hashlib.sha1(scope_text.encode(), usedforsecurity=False).hexdigest()[:8]
        self.ident = ident

    def with_limit(self, text: str) -> Rule:
        """This rule with ``text`` as its limit: what a callable limit resolves to.

        The variant keeps the rule's scope, key, algorithm and cost; its
        storage identity adds the limit, so each distinct limit (plan) has
        its own buckets.  Raises :class:`TypeError`/:class:`ValueError` when
        ``text`` is not a limit or is below the rule's ``cost``.
        """
        if not isinstance(text, str):
            raise TypeError(
                f"the limit function of {self!r} returned {text!r}; expected a string "
                "like '100/minute' or None"
            )
        try:
            count, period = _parse_cached(text)
        except ValueError as exc:
            raise ValueError(
                f"the limit function of {self!r} returned an invalid limit: {exc}"
            ) from None
        if self.cost > count:
            raise ValueError(
                f"the limit function of {self!r} returned {text!r}, below the rule's cost "
                f"({self.cost})"
            )
        variant = copy.copy(self)
        variant.limit = text
        variant.dynamic = False
        variant.count, variant.period = count, period
        variant.name = self._given_name or f"{count}/{_period_text(period)}"
        variant.ident = f"{self.ident}:{count}/{period}"
        return variant

    def method_matches(self, method: str) -> bool:
        """Whether ``method`` is one of the rule's (case-insensitive, GET covers HEAD)."""
        methods = self._methods
        return methods is None or method in methods or method.upper() in methods

    def route_matches(self, template: str | None) -> bool:
        """Whether the route template ``template`` is one of the rule's ``route``."""
        if self._routes is None:
            return True
        return template is not None and route_key(template) in self._routes

    def applies(self, scope: Scope) -> bool:
        """Whether this rule's ``path``, ``route`` and ``methods`` match ``scope``.

        The route is read from the scope only (:func:`asgi_kit._http.route_template`);
        the middleware also resolves it through the app's router.
        """
        method = scope.get("method", "GET") if scope.get("type") == "http" else "GET"
        if not self.method_matches(method):
            return False
        if self._routes is not None:
            return self.route_matches(route_template(scope))
        return self._matcher is None or self._matcher.match(scope["path"])

    def __repr__(self) -> str:
        limit = self.limit
        parts = [
            repr(limit) if isinstance(limit, str) else getattr(limit, "__qualname__", repr(limit))
        ]
        if self.path is not None:
            parts.append(f"path={self.path!r}")
        if self.route is not None:
            parts.append(f"route={self.route!r}")
        if self.methods is not None:
            parts.append(f"methods={sorted(self.methods)!r}")
        if self.key is not None:
            parts.append(f"key={getattr(self.key, '__qualname__', self.key)!s}")
        if self.algorithm != "gcra":
            parts.append(f"algorithm={self.algorithm!r}")
        if self.cost != 1:
            parts.append(f"cost={self.cost}")
        return f"Rule({', '.join(parts)})"
