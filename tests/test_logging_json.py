"""The JSON logging set-ups documented in docs/logging.md (examples/logging_fastapi.py)."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import structlog

from ._support.asgi import asgi_client

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "logging_fastapi.py"


@pytest.fixture
def example() -> Iterator[ModuleType]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    spec = importlib.util.spec_from_file_location("logging_fastapi_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


async def _lines(example: ModuleType, via_stdlib: bool) -> tuple[Any, list[dict[str, Any]]]:
    out = io.StringIO()
    example.configure_logging(via_stdlib=via_stdlib, stream=out)
    async with asgi_client(example.app) as client:
        response = await client.get(
            "/items/7", headers={"x-request-id": "json-1", "x-forwarded-for": "198.51.100.4"}
        )
        await client.get("/health")
    if via_stdlib:
        logging.getLogger("third.party").warning("plain stdlib record")
    return response, [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("via_stdlib", [False, True], ids=["structlog", "stdlib"])
async def test_json_lines_carry_the_request_id(example: ModuleType, via_stdlib: bool) -> None:
    response, lines = await _lines(example, via_stdlib)
    assert response.json() == {"item": 7, "request_id": "json-1", "client": "198.51.100.4"}
    app_line, access_line = lines[0], lines[1]
    assert app_line["event"] == "item viewed" and app_line["request_id"] == "json-1"
    assert access_line["event"] == "request"
    assert access_line["request_id"] == "json-1"
    assert access_line["client"] == "198.51.100.4"
    assert access_line["route"] == "/items/{item_id}"
    assert access_line["level"] == "info" and "timestamp" in access_line
    assert not any(line.get("path") == "/health" for line in lines)  # excluded
    if via_stdlib:
        assert access_line["logger"] == "asgi_kit.access"
        assert lines[-1]["event"] == "plain stdlib record"
        assert lines[-1]["logger"] == "third.party"
        # Foreign stdlib records (httpx's here) are rendered as JSON too.
        assert {line["logger"] for line in lines} == {
            "shop",
            "asgi_kit.access",
            "httpx",
            "third.party",
        }
    else:
        assert len(lines) == 2
