"""``RateLimitMiddleware``: applies rules, answers 429, adds RateLimit headers."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import structlog

from asgi_kit._backend_failures import failure_log
from asgi_kit._http import (
    APPLICATION_JSON,
    PathMatcher,
    asgi3,
    copy_start,
    normalize_path,
    refuse_websocket,
    send_response,
)
from asgi_kit._plumbing.options import check_int, check_type
from asgi_kit._routes import mark_answered
from asgi_kit.types import AnyASGIApp, ASGIApp, Headers, Message, Receive, Scope, Send

from .backends.base import Backend, Outcome
from .backends.memory import MemoryBackend
from .keys import KeyFunc, client_ip
from .routes import RouteResolver
from .rule import Rule, route_key

__all__ = ["RateLimitMiddleware"]

HeaderMode = Literal["legacy", "ietf"] | bool
_OUR_HEADERS = frozenset(
    {
        b"ratelimit-limit",
        b"ratelimit-remaining",
        b"ratelimit-reset",
        b"ratelimit-policy",
        b"ratelimit",
    }
)
_MAX_KEY_LENGTH = 256
_SERVICE_UNAVAILABLE = b'{"detail":"Service Unavailable"}'
_DEFAULT_RULES = (Rule("100/minute"),)
_UNRESOLVED = object()
_ROUNDING = 1e-6
#: The IETF draft's problem type for a 429 (RFC 9457 problem details).
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
APPLICATION_PROBLEM_JSON = b"application/problem+json"
# Distinct limit strings kept per callable-limit rule (one per plan or tier).
_MAX_VARIANTS = 256
# Already upper-case: a rule that does not list one of them does not match it.
_STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "QUERY"}
)
_logger = logging.getLogger("asgi_kit.ratelimit")


class _Plan:
    """A rule with everything the hot path needs, resolved once."""

    __slots__ = (
        "ietf_name",
        "ietf_policy",
        "key",
        "legacy_limit",
        "legacy_policy",
        "matcher",
        "methods",
        "routes",
        "rule",
        "variants",
    )

    def __init__(self, rule: Rule, key: KeyFunc) -> None:
        self.rule = rule
        # A callable limit: one plan per limit string it returned (bounded LRU).
        self.variants: OrderedDict[str, _Plan] | None = OrderedDict() if rule.dynamic else None
        # Upper-case names, HEAD added to GET unless the rule opted out.
        self.methods = rule._methods
        self.matcher = rule._matcher
        self.routes = rule._routes
        self.key = key
        self.legacy_limit = (b"ratelimit-limit", str(rule.count).encode())
        self.legacy_policy = (b"ratelimit-policy", f"{rule.count};w={rule.period}".encode())
        self.ietf_name = f'"{rule.name}"'.encode()
        unit = f';qu="{rule.unit}"' if rule.unit is not None else ""
        self.ietf_policy = self.ietf_name + f";q={rule.count}{unit};w={rule.period}".encode()

    def variant(self, text: str) -> _Plan:
        """The plan of this (callable-limit) rule with limit ``text``, cached."""
        variants = self.variants
        assert variants is not None
        found = variants.get(text)
        if found is not None:
            variants.move_to_end(text)
            return found
        found = _Plan(self.rule.with_limit(text), self.key)
        if len(variants) >= _MAX_VARIANTS:
            variants.popitem(last=False)
        variants[text] = found
        return found


def _hashed_partition(key: str) -> bytes:
    """``partition_key=True``: a digest of the client's key, never the key itself."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:12]


async def _resolve_limit(plan: _Plan, scope: Scope) -> _Plan | None:
    """The plan for this request's limit of a callable-limit rule (None: not limited)."""
    limit: Any = plan.rule.limit
    text = limit(scope)
    if inspect.isawaitable(text):
        text = await text
    if text is None:
        return None
    return plan.variant(text)


async def _resolve_key(value: Any, plan: _Plan) -> str | None:
    """The slow path of a key function's result: awaitables, bytes, long keys."""
    if inspect.isawaitable(value):
        value = await value
    text: str
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = value.decode("latin-1")
    else:
        raise TypeError(
            f"rate-limit key function {plan.key!r} returned {value!r}; expected str or None"
        )
    if len(text) > _MAX_KEY_LENGTH:
        # A hostile header must not become a huge storage key.
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


def _merge_headers(message: Message, extra: Headers) -> Message:
    """A copy of a start/accept message with ``extra`` added, replacing same-named headers."""
    message, headers = copy_start(message)
    names = _OUR_HEADERS
    for k, _ in headers:
        # Cheap first-byte test (r/R) before the case-insensitive set look-up.
        if k and (k[0] | 0x20) == 0x72 and k.lower() in names:
            headers[:] = [(k, v) for k, v in headers if k.lower() not in names]
            break
    headers.extend(extra)
    return message


class RateLimitMiddleware:
    """Limit request rates per client, exactly, on one process or many.

    Every rule whose ``path`` (in any spelling the router treats as it) or
    ``route``, and ``methods`` (case-insensitive, GET covering HEAD) match a
    request is checked
    against its own bucket (keyed by the rule's ``key``, else ``key``); the
    request is denied when any of them denies, and then no rule's quota is
    consumed.  Denied HTTP requests get ``429`` with ``Retry-After`` (whole
    seconds, rounded up) and a small JSON body, or whatever the ``on_limited``
    ASGI app answers; denied WebSocket handshakes are refused with 429 before
    they are accepted (403 on servers without the HTTP-response extension).

    Args:
        app: The ASGI application to wrap (ASGI 2 apps are adapted).
        rules: The :class:`Rule` objects to apply (default: one
            ``Rule("100/minute")`` for every request).
        backend: Where state lives: :class:`MemoryBackend` (the default, one
            per middleware, per process) or :class:`RedisBackend` (shared by
            every worker and host).
        key: Default key function ``(scope) -> str | None`` (sync or async):
            the client a request counts against; None means not limited.
            The default, :func:`client_ip`, reads ``scope["client"]``.
        exempt_paths: Exact paths or globs (``"/health"``, ``"/static/*"``)
            never limited (None: none).  A request is exempt only when every
            spelling the router may resolve matches (see
            :class:`asgi_kit._http.PathMatcher`): ``//health`` is exempt
            where it reaches the ``/health`` route, and ``/health/../admin``
            never is.  ``exclude_paths`` is the same option under the name
            every other asgi_kit middleware uses (give one of them).
        on_backend_error: ``"allow"`` lets requests through when the backend
            fails; ``"deny"`` answers 503 with ``Retry-After``.  Failures are
            logged as ``asgi_kit.ratelimit`` (through structlog when the
            application configured it, else stdlib logging): the first at
            once, then one summary per interval with a count; each is
            counted in ``asgi_kit_backend_failures_total``.
        headers: ``"legacy"`` sends ``RateLimit-Limit``, ``-Remaining``,
            ``-Reset`` (delta seconds) and ``RateLimit-Policy: 100;w=60``;
            ``"ietf"`` sends the IETF draft's ``RateLimit-Policy`` and
            ``RateLimit`` structured fields; ``False`` sends none
            (``Retry-After`` is always sent on 429).
        on_limited: Optional ASGI app that answers denied HTTP requests; it
            receives ``scope["ratelimit"]`` (the decision) and its response
            gets the rate-limit headers and ``Retry-After``.
        error_retry_after: ``Retry-After`` seconds on the 503 of
            ``on_backend_error="deny"``.
        partition_key: With ``headers="ietf"``, add the draft's ``pk``
            parameter (a Byte Sequence naming the client's partition) to
            each policy and to ``RateLimit``: True sends the first 12 bytes
            of the SHA-256 of the rule's key (never the key, which may be an
            API key or an address); a callable ``(key) -> bytes`` chooses.
        problem_details: Answer 429s with an RFC 9457
            ``application/problem+json`` body of the draft's
            ``quota-exceeded`` problem type, listing the denying rules'
            names in ``violated-policies`` (instead of the small JSON body).
    """

    def __init__(
        self,
        app: AnyASGIApp,
        rules: Sequence[Rule] | Rule | None = None,
        backend: Backend | None = None,
        key: KeyFunc = client_ip,
        exempt_paths: Iterable[str] | None = (),
        on_backend_error: Literal["allow", "deny"] = "allow",
        headers: HeaderMode = "legacy",
        *,
        exclude_paths: Iterable[str] | None = (),
        on_limited: AnyASGIApp | None = None,
        error_retry_after: int = 1,
        partition_key: bool | Callable[[str], bytes] = False,
        problem_details: bool = False,
    ) -> None:
        self.app: ASGIApp = asgi3(app)
        given: Any = rules
        if given is None:
            given = _DEFAULT_RULES
        elif isinstance(given, Rule):
            given = (given,)
        elif isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
            raise TypeError(f"rules must be a list of Rule objects, got {given!r}")
        rules = tuple(given)
        if not rules:
            raise ValueError("rules must contain at least one Rule")
        for rule in rules:
            if not isinstance(rule, Rule):
                raise TypeError(f"rules: {rule!r} is not a Rule (write Rule({rule!r}))")
        idents: dict[str, Rule] = {}
        for rule in rules:
            if rule.ident in idents:
                raise ValueError(
                    f"rules: {rule!r} and {idents[rule.ident]!r} would share storage; "
                    "give one of them a distinct name="
                )
            idents[rule.ident] = rule
        self.rules = rules

        if backend is None:
            backend = MemoryBackend()
        elif not isinstance(backend, Backend):
            raise TypeError(
                f"backend must be a MemoryBackend, RedisBackend or Backend, got {backend!r}"
            )
        self.backend = backend

        if not callable(key):
            raise TypeError(f"key must be a callable (scope) -> str | None, got {key!r}")
        self.key = key
        self._plans = tuple(_Plan(rule, rule.key or key) for rule in rules)
        first = self._plans[0]
        self._single = (
            first
            if len(self._plans) == 1 and first.routes is None and first.variants is None
            else None
        )
        self._single_list = [self._plans[0]]
        # Built only when a route= rule exists: resolving costs a router match.
        self._resolver = (
            RouteResolver(self.app) if any(p.routes is not None for p in self._plans) else None
        )
        self._route_warned = False

        if exclude_paths is None or isinstance(exclude_paths, str) or exclude_paths:
            if exempt_paths:
                raise ValueError("give exclude_paths or its alias exempt_paths, not both")
            exempt_paths, option = exclude_paths, "exclude_paths"
        else:
            option = "exempt_paths"
        self.exempt_paths = PathMatcher((() if exempt_paths is None else exempt_paths), option)
        self.exclude_paths = self.exempt_paths
        self._exempt = self.exempt_paths if self.exempt_paths else None
        # Normalise the path (once per request) only when a pattern will see it.
        self._normalise = self._exempt is not None or any(
            p.matcher is not None and not p.matcher.exact for p in self._plans
        )

        check_type("on_backend_error", on_backend_error, str, "'allow' or 'deny'")
        if on_backend_error not in ("allow", "deny"):
            raise ValueError(
                f"on_backend_error must be 'allow' or 'deny', got {on_backend_error!r}"
            )
        self.on_backend_error = on_backend_error

        if headers is True:
            headers = "legacy"
        check_type("headers", headers, (str, bool), "'legacy', 'ietf' or False")
        if headers not in ("legacy", "ietf", False):
            raise ValueError(f"headers must be 'legacy', 'ietf' or False, got {headers!r}")
        self.headers: HeaderMode = headers
        self._ietf = headers == "ietf"
        self._headers_on = headers is not False

        if on_limited is not None and not callable(on_limited):
            raise TypeError(f"on_limited must be an ASGI app, got {on_limited!r}")
        self.on_limited: ASGIApp | None = None if on_limited is None else asgi3(on_limited)

        check_int("error_retry_after", error_retry_after, 0)
        self._error_headers: Headers = [(b"retry-after", str(error_retry_after).encode())]

        if partition_key is not True and partition_key is not False and not callable(partition_key):
            raise TypeError(
                f"partition_key must be a bool or a callable (key) -> bytes, got {partition_key!r}"
            )
        if partition_key is not False and not self._ietf:
            raise ValueError("partition_key needs headers='ietf' (the draft's pk parameter)")
        self.partition_key = partition_key
        self._pk: Callable[[str], bytes] | None = (
            None
            if partition_key is False
            else (_hashed_partition if partition_key is True else partition_key)
        )
        if not isinstance(problem_details, bool):
            raise TypeError(f"problem_details must be a bool, got {problem_details!r}")
        self.problem_details = problem_details
        self._log = structlog.get_logger("asgi_kit.ratelimit")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type == "http":
            method = scope["method"]
        elif scope_type == "websocket":
            method = "GET"  # the handshake is a GET request
        else:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self._single is not None:
            # One rule (the common case): no per-request lists to build up.
            plan = self._single
            methods = plan.methods
            if (
                methods is not None
                and method not in methods
                # `post` runs Django's POST view: compare it upper-cased (the
                # set test first keeps GET/POST/... off the str.upper call).
                and (method in _STANDARD_METHODS or method.upper() not in methods)
            ):
                await self.app(scope, receive, send)
                return
            # Normalised once, after the cheap method test, for both matchers.
            normal = normalize_path(path) if self._normalise else path
            if (self._exempt is not None and self._exempt(path, scope, normal)) or (
                plan.matcher is not None and not plan.matcher.match(path, normal)
            ):
                await self.app(scope, receive, send)
                return
            value = plan.key(scope)
            if type(value) is not str or len(value) > _MAX_KEY_LENGTH:
                value = await _resolve_key(value, plan)
                if value is None:
                    await self.app(scope, receive, send)
                    return
            plans = self._single_list
            checks = [(plan.rule, value)]
        else:
            normal = normalize_path(path) if self._normalise else path
            if self._exempt is not None and self._exempt(path, scope, normal):
                await self.app(scope, receive, send)
                return
            plans, checks = await self._applicable(scope, method, path, normal)
            if not checks:
                await self.app(scope, receive, send)
                return

        try:
            outcomes = await self.backend.hit(checks)
        except Exception as exc:
            await self._backend_failed(exc, scope, receive, send)
            return

        if len(outcomes) == 1:
            index = 0
            outcome = outcomes[0]
        else:
            index, outcome = _most_restrictive(outcomes)

        if outcome.allowed:
            if not self._headers_on:
                await self.app(scope, receive, send)
                return
            extra = self._rate_headers(plans, index, outcome, checks)
            start_type = "http.response.start" if scope_type == "http" else "websocket.accept"

            async def send_with_headers(message: Message) -> None:
                if message["type"] == start_type:
                    message = _merge_headers(message, extra)
                await send(message)

            await self.app(scope, receive, send_with_headers)
            return

        await self._deny(scope, receive, send, plans, index, outcome, outcomes, checks)

    async def _applicable(
        self, scope: Scope, method: str, path: str, normal: str
    ) -> tuple[list[_Plan], list[tuple[Rule, str]]]:
        """The rules matching this request, with the request's key for each."""
        plans: list[_Plan] = []
        checks: list[tuple[Rule, str]] = []
        upper: str | None = None
        template: Any = _UNRESOLVED
        for plan in self._plans:
            methods = plan.methods
            if methods is not None and method not in methods:
                if method in _STANDARD_METHODS:
                    continue
                if upper is None:
                    upper = method.upper()
                if upper not in methods:
                    continue
            if plan.matcher is not None and not plan.matcher.match(path, normal):
                continue
            if plan.routes is not None:
                if template is _UNRESOLVED:
                    template = self._route(scope)
                if template is None or template not in plan.routes:
                    continue
            value = plan.key(scope)
            if type(value) is not str or len(value) > _MAX_KEY_LENGTH:
                value = await _resolve_key(value, plan)
                if value is None:
                    continue
            if plan.variants is not None:
                resolved = await _resolve_limit(plan, scope)
                if resolved is None:
                    continue
                plan = resolved
            plans.append(plan)
            checks.append((plan.rule, value))
        return plans, checks

    def _route(self, scope: Scope) -> str | None:
        """This request's route template, compared form (once per request, route= rules)."""
        assert self._resolver is not None
        template = self._resolver(scope)
        if template is not None:
            return route_key(template)
        if self._resolver.kind == "" and not self._route_warned:
            self._route_warned = True
            _logger.warning(
                "RateLimitMiddleware: a route= rule cannot see the route of %s: the app "
                "behind the middleware names no route and has no Starlette router or "
                "asgi_kit Django adapter the middleware can resolve it with; route= rules "
                "apply only where the route is known (see the rate-limit docs)",
                scope.get("path"),
            )
        return template

    def _rate_headers(
        self,
        plans: list[_Plan],
        index: int,
        outcome: Outcome,
        checks: Sequence[tuple[Rule, str]],
    ) -> Headers:
        plan = plans[index]
        # Less a microsecond: `now + 30.0 - now` can come out as 30.000000000004.
        reset = b"%d" % math.ceil(outcome.reset - _ROUNDING)
        if self._ietf:
            if self._pk is not None:
                return self._ietf_with_partitions(plans, index, outcome, checks, reset)
            policy = (
                plan.ietf_policy if len(plans) == 1 else b", ".join([p.ietf_policy for p in plans])
            )
            state = b"%s;r=%d;t=%s" % (plan.ietf_name, outcome.remaining, reset)
            return [(b"ratelimit-policy", policy), (b"ratelimit", state)]
        return [
            plan.legacy_limit,
            (b"ratelimit-remaining", b"%d" % outcome.remaining),
            (b"ratelimit-reset", reset),
            plan.legacy_policy,
        ]

    def _ietf_with_partitions(
        self,
        plans: list[_Plan],
        index: int,
        outcome: Outcome,
        checks: Sequence[tuple[Rule, str]],
        reset: bytes,
    ) -> Headers:
        """The IETF fields with each policy's partition key (``pk``, a Byte Sequence)."""
        assert self._pk is not None
        pks = [b";pk=:" + base64.b64encode(self._pk(key)) + b":" for _, key in checks]
        policy = b", ".join([p.ietf_policy + pk for p, pk in zip(plans, pks, strict=True)])
        plan = plans[index]
        state = b"%s;r=%d;t=%s%s" % (plan.ietf_name, outcome.remaining, reset, pks[index])
        return [(b"ratelimit-policy", policy), (b"ratelimit", state)]

    def _denied_body(
        self, plans: list[_Plan], outcomes: Sequence[Outcome], retry_after: int
    ) -> tuple[bytes, bytes]:
        """The 429 body and its content type: small JSON, or RFC 9457 problem details."""
        if not self.problem_details:
            body = b'{"detail":"Too Many Requests","retry_after":%d}' % retry_after
            return body, APPLICATION_JSON
        violated = [p.rule.name for p, o in zip(plans, outcomes, strict=False) if not o.allowed]
        problem = {
            "type": QUOTA_EXCEEDED,
            "title": "Too Many Requests",
            "status": 429,
            "detail": f"Quota exceeded; retry after {retry_after} seconds.",
            "violated-policies": violated,
            "retry_after": retry_after,
        }
        return json.dumps(problem, separators=(",", ":")).encode(), APPLICATION_PROBLEM_JSON

    async def _deny(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        plans: list[_Plan],
        index: int,
        outcome: Outcome,
        outcomes: Sequence[Outcome],
        checks: Sequence[tuple[Rule, str]],
    ) -> None:
        mark_answered(scope, "ratelimit")  # for metrics: not an unmatched path
        retry_after = max(math.ceil(outcome.retry_after - _ROUNDING), 1)
        # Reset and Retry-After name the same instant, as the IETF draft asks.
        outcome = outcome._replace(reset=float(retry_after))
        extra = self._rate_headers(plans, index, outcome, checks) if self._headers_on else []
        extra.append((b"retry-after", str(retry_after).encode()))
        if scope["type"] == "websocket":
            await refuse_websocket(
                scope, receive, send, 429, b"Too Many Requests", extra, close_code=1008
            )
            return
        if self.on_limited is not None:
            scope["ratelimit"] = {
                "rule": plans[index].rule,
                "retry_after": retry_after,
                "outcomes": [(p.rule, o) for p, o in zip(plans, outcomes, strict=False)],
            }

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = _merge_headers(message, extra)
                    message["headers"][:] = [
                        (k, v) for k, v in message["headers"] if k.lower() != b"retry-after"
                    ] + [extra[-1]]
                await send(message)

            await self.on_limited(scope, receive, send_with_headers)
            return
        body, content_type = self._denied_body(plans, outcomes, retry_after)
        await send_response(send, 429, body, content_type, extra)

    async def _backend_failed(
        self, exc: Exception, scope: Scope, receive: Receive, send: Send
    ) -> None:
        # Collapsed: the first failure is logged at once, then one summary
        # per interval (a flood must not turn into a log flood); every
        # failure is counted in asgi_kit_backend_failures_total.
        failure_log("ratelimit", self.backend, "rate limit backend failed").failed(
            exc,
            self.on_backend_error,
            on_backend_error=self.on_backend_error,
            path=scope.get("path"),
        )
        if self.on_backend_error == "allow":
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await refuse_websocket(
                scope, receive, send, 503, b"Service Unavailable", self._error_headers, 1013
            )
        else:
            await send_response(
                send, 503, _SERVICE_UNAVAILABLE, APPLICATION_JSON, self._error_headers
            )

    def __repr__(self) -> str:
        return (
            f"RateLimitMiddleware(rules={list(self.rules)!r}, backend={self.backend!r}, "
            f"on_backend_error={self.on_backend_error!r}, headers={self.headers!r})"
        )


def _most_restrictive(outcomes: Sequence[Outcome]) -> tuple[int, Outcome]:
    """The outcome the headers describe.

    When the request is denied: the denying rule that frees up last (its
    ``Retry-After`` is when the request can succeed).  Otherwise: the rule
    with the fewest remaining units, then the latest reset.
    """
    best = 0
    best_outcome = outcomes[0]
    denied = not all(o.allowed for o in outcomes)
    for i, o in enumerate(outcomes):
        if denied:
            if not o.allowed and (best_outcome.allowed or o.retry_after > best_outcome.retry_after):
                best, best_outcome = i, o
        elif (o.remaining, -o.reset) < (best_outcome.remaining, -best_outcome.reset):
            best, best_outcome = i, o
    return best, best_outcome
