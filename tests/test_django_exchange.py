"""One request's exchange: Django, the middleware and the view (contrib/django/_exchange.py)."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import pytest
from django.test import AsyncClient, Client, override_settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from tests._support.django import (
    KINDS,
    P,
    _compressible,
    _File,
    _reset,  # noqa: F401 (autouse: configures Django)
    fetch,
)
from tests.apps.django_project import views


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_closed_before_it_started_stops_the_middleware(kind: str) -> None:
    from asgi_kit.contrib.django import _exchange as ex

    tasks: list[Any] = []
    original = ex.Exchange.drive

    async def tracking_drive(self: Any, app: Any) -> None:
        tasks.append(asyncio.current_task())
        await original(self, app)

    with override_settings(MIDDLEWARE=[P + "UpperCaseBody"]):
        ex.Exchange.drive = tracking_drive  # type: ignore[method-assign]
        try:
            if kind == "wsgi":

                def run() -> None:
                    response = Client().get("/stream", headers={"X-Upper": "1"})
                    assert response.streaming
                    response.close()  # never iterated

                await asyncio.to_thread(run)
            else:
                response = await AsyncClient().get("/stream", headers={"X-Upper": "1"})
                await asyncio.to_thread(response.close)
        finally:
            ex.Exchange.drive = original  # type: ignore[method-assign]
        for _ in range(200):
            if tasks and all(t.done() for t in tasks):
                break
            await asyncio.sleep(0.01)
    assert tasks and all(t.done() for t in tasks)


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_closed_early_stops_the_view_iterator(kind: str) -> None:
    with override_settings(MIDDLEWARE=[P + "AddHeader", P + "UpperCaseBody"]):
        if kind == "wsgi":

            def run() -> None:
                response = Client().get("/stream", headers={"X-Upper": "1"})
                iterator = iter(response.streaming_content)
                assert next(iterator) == b"CHUNK 0\n"
                response.close()  # what a WSGI server does when the client leaves

            await asyncio.to_thread(run)
        else:
            response = await AsyncClient().get("/stream", headers={"X-Upper": "1"})
            iterator = aiter(response.streaming_content)
            assert await anext(iterator) == b"CHUNK 0\n"
            await iterator.aclose()  # type: ignore[attr-defined]
            await asyncio.to_thread(response.close)
        for _ in range(100):
            if views.PRODUCED.get("sync_closed"):
                break
            await asyncio.sleep(0.01)
    assert views.PRODUCED.get("sync_closed") == 1
    assert views.PRODUCED["sync"] < 5
    # The adapter is still healthy afterwards.
    assert (await fetch(kind, "GET", "/json")).status == 200


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", KINDS)
async def test_body_kept_by_the_middleware_leaves_the_view_an_empty_body(kind: str) -> None:
    body = _compressible(150_000)
    with override_settings(MIDDLEWARE=[P + "BodyPeek"]):
        result = await fetch(
            kind, "POST", "/echo", data=body, content_type="application/octet-stream"
        )
    assert result["X-Peeked"] == str(len(body))
    assert result.body == b""
    assert result["X-Body-Length"] == "0"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("adapter", ["GunzipLazy", "GunzipEager"])
@pytest.mark.parametrize("size", [0, 1000, 300_000])
async def test_request_body_is_what_the_middleware_passes_on(
    kind: str, adapter: str, size: int
) -> None:
    plain = _compressible(size)
    with override_settings(MIDDLEWARE=[P + adapter, P + "AddHeader"]):
        result = await fetch(
            kind,
            "POST",
            "/echo",
            data=gzip.compress(plain),
            content_type="application/octet-stream",
            headers={"Content-Encoding": "gzip"},
        )
    assert result.status == 200
    assert result["X-Body-Length"] == str(size)
    assert result.body == plain


@pytest.mark.parametrize("kind", KINDS)
async def test_request_body_untouched_when_middleware_ignores_it(kind: str) -> None:
    body = _compressible(200_000)
    with override_settings(MIDDLEWARE=[P + "GunzipLazy", P + "AddHeader"]):
        echo = await fetch(
            kind, "POST", "/echo", data=body, content_type="application/octet-stream"
        )
        form = await fetch(
            kind,
            "POST",
            "/form",
            data=encode_multipart(BOUNDARY, {"name": "bob", "upload": _File(b"data", "a.txt")}),
            content_type=MULTIPART_CONTENT,
        )
    assert echo.body == body
    assert form.json() == {"name": "bob", "files": ["upload"]}
