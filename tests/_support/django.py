"""Helpers shared by the Django adapter tests: the request driver, the test project."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from django.test import AsyncClient, Client

from tests.apps.django_project import configure, views

KINDS = ("wsgi", "asgi")
P = "tests.apps.django_project.adapters."


@pytest.fixture(autouse=True)
def _reset() -> None:
    # Configured here, not at import: collecting this module must not fix
    # Django's settings for other test modules.
    configure()
    views.CALLS.clear()
    views.PRODUCED.clear()


class Result:
    """A response plus the body, read the way a server would."""

    def __init__(self, response: Any, body: bytes, thread: int) -> None:
        self.response = response
        self.body = body
        self.thread = thread

    def json(self) -> Any:
        return json.loads(self.body)

    def __getitem__(self, name: str) -> str:
        return str(self.response[name])

    def get(self, name: str) -> str | None:
        return self.response.get(name)  # type: ignore[no-any-return]

    @property
    def status(self) -> int:
        return int(self.response.status_code)

    def cookie_lines(self) -> list[str]:
        return [m.output(header="").strip() for m in self.response.cookies.values()]


async def fetch(kind: str, method: str, path: str, **kwargs: Any) -> Result:
    """One request through Django's WSGI (``Client``) or ASGI (``AsyncClient``) handler."""
    if kind == "wsgi":

        def run() -> Result:
            response = Client(raise_request_exception=False).generic(method, path, **kwargs)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            return Result(response, body, threading.get_ident())

        return await asyncio.to_thread(run)
    response = await AsyncClient(raise_request_exception=False).generic(method, path, **kwargs)
    if response.streaming:
        body = b"".join([chunk async for chunk in response.streaming_content])
    else:
        body = response.content
    return Result(response, body, threading.get_ident())


def _compressible(size: int) -> bytes:
    line = b"The quick brown fox jumps over the lazy dog %d.\n"
    out = bytearray()
    i = 0
    while len(out) < size:
        out += line % i
        i += 1
    return bytes(out[:size])


class _File:
    """A minimal file for the test client's multipart encoder."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name

    def read(self) -> bytes:
        return self.data
