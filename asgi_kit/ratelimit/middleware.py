"""``RateLimitMiddleware``: applies rules, answers 429, adds RateLimit headers."""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import structlog

from asgi_kit._backend_failures import failure_log
from asgi_kit._http import (
    APPLICATION_JSON,
    PathMatcher,
    asgi3,
    copy_start,
    refuse_websocket,
    send_response,
)
from asgi_kit.types import AnyASGIApp, ASGIApp, Headers, Message, Receive, Scope, Send

from .backends.base import Backend, Outcome
from .backends.memory import MemoryBackend
from .keys import KeyFunc, client_ip
from .rule import Rule

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
        "rule",
    )

    def __init__(self, rule: Rule, key: KeyFunc) -> None:
        self.rule = rule
        self.methods = rule.methods
        self.matcher = rule._matcher
        self.key = key
        self.legacy_limit = (b"ratelimit-limit", str(rule.count).encode())
        self.legacy_policy = (b"ratelimit-policy", f"{rule.count};w={rule.period}".encode())
        self.ietf_name = f'"{rule.name}"'.encode()
        self.ietf_policy = self.ietf_name + f";q={rule.count};w={rule.period}".encode()


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

    Every rule whose ``path`` and ``methods`` match a request is checked
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
            never limited (None: none).
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
        on_limited: AnyASGIApp | None = None,
        error_retry_after: int = 1,
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
        self._single = self._plans[0] if len(self._plans) == 1 else None
        self._single_list = [self._plans[0]]

        self.exempt_paths = PathMatcher(
            () if exempt_paths is None else exempt_paths, "exempt_paths"
        )
        self._exempt = self.exempt_paths if self.exempt_paths else None

        if on_backend_error not in ("allow", "deny"):
            raise ValueError(
                f"on_backend_error must be 'allow' or 'deny', got {on_backend_error!r}"
            )
        self.on_backend_error = on_backend_error

        if headers is True:
            headers = "legacy"
        if headers not in ("legacy", "ietf", False):
            raise ValueError(f"headers must be 'legacy', 'ietf' or False, got {headers!r}")
        self.headers: HeaderMode = headers
        self._ietf = headers == "ietf"
        self._headers_on = headers is not False

        if on_limited is not None and not callable(on_limited):
            raise TypeError(f"on_limited must be an ASGI app, got {on_limited!r}")
        self.on_limited: ASGIApp | None = None if on_limited is None else asgi3(on_limited)

        if (
            isinstance(error_retry_after, bool)
            or not isinstance(error_retry_after, int)
            or error_retry_after < 0
        ):
            raise ValueError(f"error_retry_after must be an int >= 0, got {error_retry_after!r}")
        self._error_headers: Headers = [(b"retry-after", str(error_retry_after).encode())]
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
        if self._exempt is not None and self._exempt(path):
            await self.app(scope, receive, send)
            return

        if self._single is not None:
            # One rule (the common case): no per-request lists to build up.
            plan = self._single
            if (plan.methods is not None and method not in plan.methods) or (
                plan.matcher is not None and not plan.matcher(path)
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
            plans, checks = await self._applicable(scope, method, path)
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
            extra = self._rate_headers(plans, index, outcome)
            start_type = "http.response.start" if scope_type == "http" else "websocket.accept"

            async def send_with_headers(message: Message) -> None:
                if message["type"] == start_type:
                    message = _merge_headers(message, extra)
                await send(message)

            await self.app(scope, receive, send_with_headers)
            return

        await self._deny(scope, receive, send, plans, index, outcome, outcomes)

    async def _applicable(
        self, scope: Scope, method: str, path: str
    ) -> tuple[list[_Plan], list[tuple[Rule, str]]]:
        """The rules matching this request, with the request's key for each."""
        plans: list[_Plan] = []
        checks: list[tuple[Rule, str]] = []
        for plan in self._plans:
            if plan.methods is not None and method not in plan.methods:
                continue
            if plan.matcher is not None and not plan.matcher(path):
                continue
            value = plan.key(scope)
            if type(value) is not str or len(value) > _MAX_KEY_LENGTH:
                value = await _resolve_key(value, plan)
                if value is None:
                    continue
            plans.append(plan)
            checks.append((plan.rule, value))
        return plans, checks

    def _rate_headers(self, plans: list[_Plan], index: int, outcome: Outcome) -> Headers:
        plan = plans[index]
        reset = b"%d" % math.ceil(outcome.reset)
        if self._ietf:
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

    async def _deny(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        plans: list[_Plan],
        index: int,
        outcome: Outcome,
        outcomes: Sequence[Outcome],
    ) -> None:
        retry_after = max(math.ceil(outcome.retry_after), 1)
        # Reset and Retry-After name the same instant, as the IETF draft asks.
        outcome = outcome._replace(reset=float(retry_after))
        extra = self._rate_headers(plans, index, outcome) if self._headers_on else []
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
        body = b'{"detail":"Too Many Requests","retry_after":%d}' % retry_after
        await send_response(send, 429, body, APPLICATION_JSON, extra)

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
