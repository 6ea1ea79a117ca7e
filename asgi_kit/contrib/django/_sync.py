"""The exchange under Django's WSGI handler: the middleware on a background loop."""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from asgi_kit.types import ASGIApp, Message, Scope

from ._exchange import Exchange, _restore_context, logger
from ._internals import first_closer
from ._messages import BodyChunk, MiddlewareEnded, ResponseHead, SyncCall


class _Loop:
    """The process's background event loop for WSGI requests (restarted after fork)."""

    lock = threading.Lock()
    loop: asyncio.AbstractEventLoop | None = None
    pid = 0

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        loop = cls.loop
        if loop is not None and cls.pid == os.getpid():
            return loop
        with cls.lock:
            if cls.loop is None or cls.pid != os.getpid():
                new = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=new.run_forever, name="asgi_kit-django-loop", daemon=True
                )
                thread.start()
                cls.loop, cls.pid = new, os.getpid()
            return cls.loop


class SyncExchange(Exchange):
    """Under the WSGI handler: middleware on the background loop, Django in this thread."""

    def __init__(self, request: Any, scope: Scope, get_response: Callable[[Any], Any]) -> None:
        super().__init__(request, scope, get_response)
        self.loop = _Loop.get()
        self.inbox: queue.SimpleQueue[SyncCall | ResponseHead | BodyChunk | MiddlewareEnded] = (
            queue.SimpleQueue()
        )
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    # Loop-thread side ---------------------------------------------------

    async def call_view(self, request: Any) -> Any:
        return await self.run_sync(self.get_response, request)

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        future: asyncio.Future[Any] = self.loop.create_future()
        ctx = contextvars.copy_context()
        self.inbox.put(SyncCall(func, args, ctx, future))
        result = await future
        _restore_context(ctx)
        return result

    async def read_body(self, size: int) -> bytes:
        return bytes(await self.run_sync(self.request.read, size))

    def deliver_head(self, start: Message, body: bytes, more: bool) -> None:
        self.inbox.put(ResponseHead(start, body, more))

    async def push_chunk(self, body: bytes, more: bool) -> None:
        if not body or self.closed:
            return
        ack: asyncio.Future[None] = self.loop.create_future()
        self.inbox.put(BodyChunk(body, ack))
        await ack

    def end(self, exc: BaseException | None) -> None:
        if exc is not None and self.head_sent and self.finished:
            if not isinstance(exc, asyncio.CancelledError):
                logger.error("ASGI middleware raised after its response", exc_info=exc)
            exc = None
        self.inbox.put(MiddlewareEnded(exc))

    # Request-thread side ------------------------------------------------

    def _resolve(
        self, future: asyncio.Future[Any], value: Any, error: BaseException | None
    ) -> None:
        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        self.loop.call_soon_threadsafe(settle)

    def _run_call(self, call: SyncCall) -> None:
        future = call.future
        try:
            value = call.context.run(call.func, *call.args)
        except BaseException as exc:  # handed to the awaiting coroutine
            self._resolve(future, None, exc)
        else:
            self._resolve(future, value, None)

    def abort(self) -> None:
        """Cancel the middleware's task (thread-safe)."""
        self.closed = True

        def cancel() -> None:
            if self.task is not None and not self.task.done():
                self.task.cancel()

        self.loop.call_soon_threadsafe(cancel)

    def _next_item(self) -> ResponseHead | BodyChunk | MiddlewareEnded:
        """Serve calls into this thread until the middleware reports something else."""
        while True:
            item = self.inbox.get()
            if isinstance(item, SyncCall):
                self._run_call(item)
                continue
            return item

    def _wait_end(self) -> None:
        item = self._next_item()
        while not isinstance(item, MiddlewareEnded):  # chunks cannot follow a complete body
            item = self._next_item()
        if item.error is not None:
            raise item.error

    def stream(self, first: bytes) -> Iterator[bytes]:
        ended = False
        try:
            if first:
                yield first
            while True:
                item = self._next_item()
                if isinstance(item, BodyChunk):
                    self._resolve(item.ack, None, None)
                    yield item.body
                    continue
                if isinstance(item, MiddlewareEnded):
                    ended = True
                    if item.error is not None:
                        raise item.error
                    return
        finally:
            if not ended:
                self.abort()
            self.release()

    def single(self, body: bytes) -> Any:
        return [body] if body else []

    def run(self, app: ASGIApp) -> Any:
        ctx = contextvars.copy_context()

        def start() -> None:
            # The task copies the current context: the request thread's.
            self.task = self.loop.create_task(self.drive(app))

        self.loop.call_soon_threadsafe(start, context=ctx)
        try:
            item = self._next_item()
            if not isinstance(item, ResponseHead):
                # Only the end can come before the head (no chunk without one).
                error = (item.error if isinstance(item, MiddlewareEnded) else None) or RuntimeError(
                    "the ASGI middleware returned without sending a response"
                )
                raise error
            start_message, body, more = item
            if not more:
                self._wait_end()
        except BaseException:
            self.abort()
            raise
        stream = self.stream(body) if more else None
        response = self.build_response(start_message, body, more, stream)
        if more:
            # response.close() must stop the middleware even when the stream
            # was never started (closing an unstarted generator runs nothing).
            first_closer(response, self.abort)
        else:
            self.release()
        return response
