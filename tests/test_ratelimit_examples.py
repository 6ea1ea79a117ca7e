"""The rate-limiting examples run and behave as their docstrings say."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from ._support.asgi import asgi_client

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.delenv("REDIS_URL", raising=False)  # the in-memory variant
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_fastapi_example(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _load("ratelimit_fastapi", monkeypatch)
    async with asgi_client(module.app) as client:
        statuses = [(await client.post("/login")).status_code for _ in range(5)]
        denied = await client.post("/login")
        index = await client.get("/")
    assert statuses == [200] * 5
    assert denied.status_code == 429
    assert denied.headers["content-type"] == "application/problem+json"
    assert denied.json()["violated-policies"] == ["login"]
    assert denied.headers["retry-after"] == str(denied.json()["retry_after"])
    assert denied.headers["ratelimit"].startswith('"login";r=0;')
    # The denied login did not use the general quota: 5 of 100 used.
    assert index.headers["ratelimit"].startswith('"default";r=94;')
    assert index.headers["ratelimit-policy"] == '"default";q=100;w=60'


async def test_raw_example(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _load("ratelimit_raw", monkeypatch)
    async with asgi_client(module.app) as client:
        statuses = [(await client.get("/")).status_code for _ in range(11)]
        health = await client.get("/health")
    assert statuses == [200] * 10 + [429]
    assert health.status_code == 200 and "ratelimit-limit" not in health.headers
