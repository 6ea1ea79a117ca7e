"""ServerTimingMiddleware: the walk-through middleware of docs/development.md.

Adds ``Server-Timing: app;dur=12.3`` (milliseconds until the app started its
response) so browser dev tools show the server's share of a request.  Built
on asgi_kit's plumbing, the way every asgi_kit middleware is.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter

from asgi_kit._plumbing.headers import TOKEN_RE, HeaderScan, normalize_header_name
from asgi_kit._plumbing.options import (
    check_app,
    check_exclude_paths,
    check_int,
    check_str,
)
from asgi_kit._plumbing.start import StartRewrite
from asgi_kit.types import AnyASGIApp, Message, Receive, Scope, Send

_SERVER_TIMING = b"server-timing"


class ServerTimingMiddleware:
    """Report the app's time to first byte in a ``Server-Timing`` response header.

    Args:
        app: The ASGI application to wrap.
        metric: The metric name in the header (an HTTP token).
        precision: Decimal places of the duration, 0-6.
        exclude_paths: Paths (exact, or ``/prefix/*`` globs) that get no header.
        only_with_header: When set, only requests carrying this header get the
            timing (``Vary`` then names it); None: every request.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option has an invalid value.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        metric: str = "app",
        precision: int = 1,
        exclude_paths: Iterable[str] = (),
        only_with_header: str | None = None,
    ) -> None:
        # 1. Validate every option here, naming it; precompute what does not
        #    depend on the request.
        self.app = check_app(app)
        self.metric = check_str("metric", metric)
        if not TOKEN_RE.fullmatch(metric):
            raise ValueError(f"metric: {metric!r} is not an HTTP token")
        self.precision = check_int("precision", precision, 0, 6)
        self._excluded = check_exclude_paths(exclude_paths)
        self._prefix = f"{metric};dur=".encode("ascii")
        self._format = f"%.{precision}f"
        self._gate: HeaderScan | None = None
        vary: tuple[bytes, ...] = ()
        if only_with_header is not None:
            name = normalize_header_name(only_with_header, "only_with_header")
            # 2. Every request header the middleware reads, found in one pass.
            self._gate = HeaderScan((name,))
            vary = (only_with_header.encode("latin-1"),)
        # 3. The response-start rewrite, compiled once: add our header next to
        #    any the app sent, merge Vary; the app's message is never changed.
        self._rewrite = StartRewrite(vary=vary)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # 4. Pass through what this middleware has nothing to do with.
        if scope["type"] != "http" or (self._excluded and self._excluded(scope["path"])):
            await self.app(scope, receive, send)
            return
        if self._gate is not None and self._gate.scan(scope["headers"]) is None:
            # No timing for this client, but the answer depended on the header.
            apply = self._rewrite.apply

            async def send_vary(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = apply(message)
                await send(message)

            await self.app(scope, receive, send_vary)
            return

        started = perf_counter()
        rewrite = self._rewrite
        prefix, fmt = self._prefix, self._format

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (perf_counter() - started) * 1000
                value = prefix + (fmt % elapsed).encode("ascii")
                message = rewrite.apply(message, add=((_SERVER_TIMING, value),))
            await send(message)

        await self.app(scope, receive, send_timed)
