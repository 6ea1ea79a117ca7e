"""Pure-ASGI middleware used to prove the Django adapter (defined for tests only)."""

from __future__ import annotations

import contextvars
import gzip
import zlib
from typing import Any

import structlog

from asgi_kit._http import (
    MutableHeaders,
    asgi3,
    header_value,
    normalize_header_name,
    route_template,
    send_response,
)
from asgi_kit.types import AnyASGIApp, Message, Receive, Scope, Send

#: A context variable bound by :class:`ContextBinderMiddleware`, read by views.
REQUEST_TAG: contextvars.ContextVar[str] = contextvars.ContextVar("request_tag", default="")


class StartHook:
    """Base: calls :meth:`on_start` with the response headers of every HTTP response."""

    def __init__(self, app: AnyASGIApp) -> None:
        self.app = asgi3(app)

    def on_start(self, scope: Scope, headers: MutableHeaders) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message, headers = MutableHeaders.copy_of(message)
                self.on_start(scope, headers)
            await send(message)

        await self.app(scope, receive, send_wrapper)


class AddHeaderMiddleware(StartHook):
    """Adds one response header and reports how the content type name was written."""

    def __init__(self, app: AnyASGIApp, name: str = "x-added", value: str = "yes") -> None:
        if not isinstance(value, str):
            raise TypeError(f"value must be a string, got {value!r}")
        super().__init__(app)
        self.name = normalize_header_name(name, "name")
        self.value = value.encode("latin-1")

    def on_start(self, scope: Scope, headers: MutableHeaders) -> None:
        headers.set(self.name, self.value)
        for key, _ in list(headers):
            if key.lower() == b"content-type":
                headers.set(b"x-content-type-name", key)


class ShortCircuitMiddleware:
    """Answers ``path`` itself (like a 429) and CORS-style preflights (like CORS)."""

    def __init__(self, app: AnyASGIApp, path: str = "/limited", status: int = 429) -> None:
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {status!r}")
        self.app = asgi3(app)
        self.path = path
        self.status = status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if scope["method"] == "OPTIONS" and header_value(
                headers, b"access-control-request-method"
            ):
                origin = header_value(headers, b"origin") or b"*"
                await send_response(
                    send,
                    200,
                    b"",
                    None,
                    [
                        (b"access-control-allow-origin", origin),
                        (b"access-control-allow-methods", b"GET, POST"),
                        (b"vary", b"Origin"),
                    ],
                )
                return
            if scope["path"] == self.path:
                await send_response(
                    send, self.status, b"slow down", headers=[(b"retry-after", b"7")]
                )
                return
        await self.app(scope, receive, send)


class UpperCaseBodyMiddleware:
    """Transforms the response body chunk by chunk and streams it on (like compression)."""

    def __init__(self, app: AnyASGIApp, enabled_header: str = "x-upper") -> None:
        self.app = asgi3(app)
        self.trigger = normalize_header_name(enabled_header, "enabled_header")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or header_value(scope["headers"], self.trigger) is None:
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message, headers = MutableHeaders.copy_of(message)
                headers.remove(b"content-length")
                headers.set(b"x-transformed", b"upper")
            elif message["type"] == "http.response.body":
                message = {**message, "body": bytes(message.get("body", b"")).upper()}
            await send(message)

        await self.app(scope, receive, send_wrapper)


class RouteHeaderMiddleware(StartHook):
    """Reports the route template it sees at ``http.response.start`` (like metrics)."""

    def on_start(self, scope: Scope, headers: MutableHeaders) -> None:
        headers.set(b"x-route", (route_template(scope) or "-").encode())


class CookieSetterMiddleware(StartHook):
    """Adds two ``Set-Cookie`` lines to every response (like sessions)."""

    def __init__(self, app: AnyASGIApp, name: str = "mw") -> None:
        super().__init__(app)
        self.name = name.encode()

    def on_start(self, scope: Scope, headers: MutableHeaders) -> None:
        headers.add(b"set-cookie", self.name + b"=one; Path=/; HttpOnly; SameSite=Lax")
        headers.add(b"set-cookie", self.name + b"2=two; Path=/sub; Partitioned; Secure")


class ContextBinderMiddleware:
    """Binds a context variable, fills ``scope["state"]`` and ``scope["session"]``,
    and moves the client and scheme as a proxy-headers middleware would."""

    def __init__(self, app: AnyASGIApp, client: str = "203.0.113.9") -> None:
        self.app = asgi3(app)
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = REQUEST_TAG.set("tag-" + scope["path"])
        structlog.contextvars.bind_contextvars(request_id="rid-1")
        try:
            scope = dict(scope)
            scope["state"] = {**scope.get("state", {}), "request_id": "rid-1"}
            scope["session"] = {"user": "alice"}
            if header_value(scope["headers"], b"x-pretend-proxy") is not None:
                scope["client"] = (self.client, 4242)
                scope["scheme"] = "https"
            await self.app(scope, receive, send)
        finally:
            REQUEST_TAG.reset(token)
            structlog.contextvars.unbind_contextvars("request_id")


class GunzipRequestMiddleware:
    """Decompresses gzip request bodies (``eager`` reads it all first, else per chunk)."""

    def __init__(self, app: AnyASGIApp, eager: bool = False) -> None:
        self.app = asgi3(app)
        self.eager = eager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or header_value(scope["headers"], b"content-encoding") != (
            b"gzip"
        ):
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-encoding"]
        if self.eager:
            data = b""
            while True:
                message = await receive()
                data += message.get("body", b"")
                if not message.get("more_body"):
                    break
            plain = gzip.decompress(data)
            sent = False

            async def eager_receive() -> Message:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": plain, "more_body": False}

            await self.app(scope, eager_receive, send)
            return
        decoder = zlib.decompressobj(wbits=31)

        async def lazy_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request":
                return message
            body = decoder.decompress(message.get("body", b""))
            if not message.get("more_body"):
                body += decoder.flush()
            return {**message, "body": body}

        await self.app(scope, lazy_receive, send)


class BodyPeekMiddleware(StartHook):
    """Reads the whole request body itself and passes the original ``receive`` on."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await super().__call__({**scope, "peeked": size}, receive, send)

    def on_start(self, scope: Scope, headers: MutableHeaders) -> None:
        headers.set(b"x-peeked", str(scope["peeked"]).encode())


class RequiredOptionMiddleware:
    """Has a required option and validates another (for configuration errors)."""

    def __init__(self, app: AnyASGIApp, secret_key: str, max_age: int = 60) -> None:
        if not isinstance(max_age, int) or max_age < 0:
            raise ValueError(f"max_age must be a non-negative int, got {max_age!r}")
        self.app = asgi3(app)
        self.secret_key = secret_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class FailingMiddleware:
    """Raises before answering (the adapter must surface it to Django)."""

    def __init__(self, app: AnyASGIApp) -> None:
        self.app = asgi3(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("middleware exploded")


class RaiseAfterResponseMiddleware:
    """Raises once the response is complete (the response must stand)."""

    def __init__(self, app: AnyASGIApp) -> None:
        self.app = asgi3(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        raise RuntimeError("after the response")


class LegacyASGI2Middleware:
    """An ASGI 2 (double-callable) middleware adding ``x-asgi2: yes``."""

    def __init__(self, app: AnyASGIApp) -> None:
        self.app = asgi3(app)

    def __call__(self, scope: Scope) -> Any:
        app = self.app

        async def instance(receive: Receive, send: Send) -> None:
            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message, headers = MutableHeaders.copy_of(message)
                    headers.set(b"x-asgi2", b"yes")
                await send(message)

            await app(scope, receive, send_wrapper)

        return instance
