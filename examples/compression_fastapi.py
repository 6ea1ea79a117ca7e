"""CompressionMiddleware in a FastAPI app (drop-in for Starlette's GZipMiddleware).

Run: ``uvicorn examples.compression_fastapi:app`` then
``curl -s --compressed -v http://127.0.0.1:8000/items``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from asgi_kit import CompressionMiddleware

app = FastAPI()
# `compresslevel` is accepted as an alias of `gzip_level`, so replacing
# `app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=5)`
# only needs the class name changed.
app.add_middleware(CompressionMiddleware, minimum_size=1000, compresslevel=5)


@app.get("/items")
async def items() -> list[dict[str, object]]:
    return [{"id": i, "name": f"item {i}"} for i in range(500)]


@app.get("/events")
async def events() -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        for i in range(5):
            yield f"data: tick {i}\n\n"
            await asyncio.sleep(1)

    return StreamingResponse(stream(), media_type="text/event-stream")


@app.get("/download")
async def download() -> StreamingResponse:
    # Opt a single response out of compression.
    return StreamingResponse(
        iter([b"already-packed bytes"]),
        media_type="text/plain",
        headers={"x-asgi-kit-compression": "off"},
    )
