"""The exchange under Django's ASGI handler: the middleware runs on the server's loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from asgiref.sync import sync_to_async

from asgi_kit.types import ASGIApp, Message, Scope

from ._exchange import Exchange, logger
from ._internals import first_closer
from ._messages import MiddlewareEnded, ResponseHead


class AsyncExchange(Exchange):
    """Under Django's ASGI handler: the middleware runs in a task on the server's loop."""

    def __init__(self, request: Any, scope: Scope, get_response: Callable[[Any], Any]) -> None:
        super().__init__(request, scope, get_response)
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.head: asyncio.Future[ResponseHead] = loop.create_future()
        # Made for streamed answers only.  Unbounded, but push_chunk() waits
        # until the consumer took each chunk.
        self.chunks: asyncio.Queue[bytes | MiddlewareEnded] | None = None
        self.task: asyncio.Task[None] | None = None

    async def call_view(self, request: Any) -> Any:
        return await self.get_response(request)

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        return await sync_to_async(func, thread_sensitive=True)(*args)

    async def read_body(self, size: int) -> bytes:
        # Django's ASGI handler has already spooled the body (memory or a
        # local temporary file), exactly as it reads it for views.
        return bytes(self.request.read(size))

    def deliver_head(self, start: Message, body: bytes, more: bool) -> None:
        if more:
            self.chunks = asyncio.Queue()
        if not self.head.done():
            self.head.set_result(ResponseHead(start, body, more))

    async def push_chunk(self, body: bytes, more: bool) -> None:
        if body and self.chunks is not None:
            self.chunks.put_nowait(body)
            await self.chunks.join()

    def end(self, exc: BaseException | None) -> None:
        if not self.head.done():
            if exc is None:
                exc = RuntimeError("the ASGI middleware returned without sending a response")
            self.head.set_exception(exc)
            return
        if self.chunks is None:  # complete answer: run() awaits the task itself
            if exc is not None and not isinstance(exc, asyncio.CancelledError):
                logger.error("ASGI middleware raised after its response", exc_info=exc)
            return
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            if self.finished:
                logger.error("ASGI middleware raised after its response", exc_info=exc)
                exc = None
            self.chunks.put_nowait(MiddlewareEnded(exc))
        else:
            self.chunks.put_nowait(MiddlewareEnded(None))

    def abort(self) -> None:
        """Cancel the middleware's task; safe from any thread (``response.close()``)."""
        task = self.task
        if task is None or task.done():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            task.cancel()
        else:
            self.loop.call_soon_threadsafe(task.cancel)

    async def stream(self) -> AsyncIterator[bytes]:
        chunks = self.chunks
        assert chunks is not None
        try:
            while True:
                item = await chunks.get()
                chunks.task_done()
                if isinstance(item, MiddlewareEnded):
                    if item.error is not None:
                        raise item.error
                    break
                yield item
            if self.task is not None:
                await self.task
        finally:
            self.abort()
            self.release()

    def streaming(self, first: bytes) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for chunk in self.stream():
                yield chunk

        return chunks()

    def single(self, body: bytes) -> Any:
        async def one() -> AsyncIterator[bytes]:
            if body:
                yield body

        return one()

    async def run(self, app: ASGIApp) -> Any:
        self.task = task = self.loop.create_task(self.drive(app))
        try:
            start, body, more = await self.head
            if not more:
                await task
        except BaseException:
            self.abort()
            if not task.done():
                # Client gone (Django cancels us): let the middleware and the
                # view unwind before Django finishes the request, as a server
                # waits for its app.
                await asyncio.wait((task,))
            raise
        response = self.build_response(start, body, more, self.streaming(body) if more else None)
        if more:
            first_closer(response, self.abort)
        else:
            self.release()
        return response


# --------------------------------------------------------------------------- sync
