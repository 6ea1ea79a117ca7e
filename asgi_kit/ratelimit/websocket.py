"""``WebSocketRateLimitMiddleware``: limits the messages a WebSocket client sends.

``RateLimitMiddleware`` limits handshakes; this limits what comes after: each
inbound ``websocket.receive`` message is decided by the same backends and
rules, per connection or per client key across connections, and a client
over its limit is closed with 1008 (policy violation).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal

from asgi_kit._http import asgi3, normalize_path
from asgi_kit.types import AnyASGIApp, ASGIApp, Message, Receive, Scope, Send

from .backends.base import Backend
from .keys import KeyFunc, client_ip
from .middleware import RateLimitMiddleware
from .rule import Rule

__all__ = ["WebSocketRateLimitMiddleware"]

_DEFAULT_RULES = (Rule("60/minute", name="ws-messages"),)
_logger = logging.getLogger("asgi_kit.ratelimit")


class WebSocketRateLimitMiddleware:
    """Limit inbound WebSocket messages; close with 1008 when a client is over.

    Args:
        app: The ASGI application to wrap.
        rules: :class:`Rule` objects counted per inbound message (default
            ``Rule("60/minute")``).  ``path``/``route`` scope them to
            WebSocket endpoints, ``key`` names the client, ``cost`` is the
            units one message uses, a callable ``limit`` is resolved once per
            connection; a WebSocket counts as ``GET`` for ``methods``.
        backend: :class:`MemoryBackend` (default) or :class:`RedisBackend`;
            with Redis every worker shares a per-key limit.
        key: Default key function ``(scope) -> str | None`` (None: the
            connection is not limited).
        per: ``"connection"`` (default): each connection has its own
            buckets; ``"key"``: all connections of one key share them (a user
            cannot multiply the limit by opening tabs).
        exclude_paths: Paths (or globs) never limited.
        on_backend_error: ``"allow"`` passes the message when the backend
            fails; ``"deny"`` closes the connection with 1011.  Logged as
            ``asgi_kit.ratelimit``.
        close_code: The close code for a client over its limit (1008).
            Daphne refuses application close codes below 3000; there the
            middleware sends ``4000 + close_code % 1000`` (4008) instead.
        close_reason: The close reason sent with it.

    The app then receives ``websocket.disconnect`` with ``close_code`` (as if
    the client had left) and anything it sends afterwards is dropped.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        rules: Sequence[Rule] | Rule | None = None,
        backend: Backend | None = None,
        key: KeyFunc = client_ip,
        *,
        per: Literal["connection", "key"] = "connection",
        exclude_paths: Iterable[str] | None = (),
        on_backend_error: Literal["allow", "deny"] = "allow",
        close_code: int = 1008,
        close_reason: str = "rate limit exceeded",
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, got {app!r}")
        self.app: ASGIApp = asgi3(app)
        # Rule matching, keys, exclusions, callable limits and backend
        # validation are the HTTP middleware's, run once per connection.
        self._matcher = RateLimitMiddleware(
            self.app,
            rules=rules if rules is not None else _DEFAULT_RULES,
            backend=backend,
            key=key,
            exclude_paths=exclude_paths,
            on_backend_error=on_backend_error,
            headers=False,
        )
        self.rules = self._matcher.rules
        self.backend = self._matcher.backend
        if per not in ("connection", "key"):
            raise ValueError(f"per must be 'connection' or 'key', got {per!r}")
        self.per = per
        self.on_backend_error = on_backend_error
        if isinstance(close_code, bool) or not isinstance(close_code, int):
            raise TypeError(f"close_code must be an int, got {close_code!r}")
        if not (close_code == 1000 or 3000 <= close_code <= 4999 or 1007 <= close_code <= 1014):
            raise ValueError(f"close_code must be a WebSocket close code, got {close_code}")
        self.close_code = close_code
        if not isinstance(close_reason, str) or len(close_reason.encode()) > 123:
            raise ValueError("close_reason must be a string of at most 123 UTF-8 bytes")
        self.close_reason = close_reason

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        matcher = self._matcher
        path = scope["path"]
        normal = normalize_path(path) if matcher._normalise else path
        if matcher._exempt is not None and matcher._exempt(path, scope, normal):
            await self.app(scope, receive, send)
            return
        _, found = await matcher._applicable(scope, "GET", path, normal)
        if not found:
            await self.app(scope, receive, send)
            return
        checks: list[tuple[Rule, str]] = found
        if self.per == "connection":
            connection = uuid.uuid4().hex
            checks = [(rule, f"{value}|ws:{connection}") for rule, value in found]
        backend = self.backend
        state = {"closed": False}

        async def limited_receive() -> Message:
            if state["closed"]:
                return {"type": "websocket.disconnect", "code": self.close_code}
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            try:
                outcomes = await backend.hit(checks)
            except Exception as exc:
                _logger.error(
                    "websocket rate limit backend failed: %s: %s (on_backend_error=%s, path %s)",
                    type(exc).__name__,
                    exc,
                    self.on_backend_error,
                    path,
                )
                if self.on_backend_error == "allow":
                    return message
                return await close(1011, "rate limit unavailable")
            if all(o.allowed for o in outcomes):
                return message
            return await close(self.close_code, self.close_reason)

        async def close(code: int, reason: str) -> Message:
            state["closed"] = True
            try:
                await send({"type": "websocket.close", "code": code, "reason": reason})
            except Exception:
                if code >= 3000:
                    raise
                # Daphne (autobahn) refuses application close codes below
                # 3000: send the private-use mirror (1008 -> 4008) instead.
                code = 4000 + code % 1000
                await send({"type": "websocket.close", "code": code, "reason": reason})
            return {"type": "websocket.disconnect", "code": code}

        async def guarded_send(message: Message) -> None:
            # After our close the connection is gone: drop what the app still sends.
            if not state["closed"]:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    def __repr__(self) -> str:
        return (
            f"WebSocketRateLimitMiddleware(rules={list(self.rules)!r}, backend={self.backend!r}, "
            f"per={self.per!r})"
        )
