"""The compression examples run as documented."""

from __future__ import annotations

import brotli

from ._support.asgi import asgi_client, call_http


async def test_raw_example() -> None:
    from examples.compression_raw import app

    response = await call_http(app, headers={"accept-encoding": "zstd, br"})
    assert response.header("content-encoding") == "br"
    assert brotli.decompress(response.body).startswith(b'[{"id": 0')
    response = await call_http(app, path="/raw", headers={"accept-encoding": "br"})
    assert response.header("content-encoding") is None
    assert response.header("x-asgi-kit-compression") is None


async def test_fastapi_example() -> None:
    from examples.compression_fastapi import app

    async with asgi_client(app) as client:
        response = await client.get("/items", headers={"accept-encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert response.json()[499] == {"id": 499, "name": "item 499"}
        response = await client.get("/download", headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in response.headers
        assert "x-asgi-kit-compression" not in response.headers
        assert response.content == b"already-packed bytes"
