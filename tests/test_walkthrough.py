"""The "how to add a middleware" walk-through of docs/development.md is real code that works."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from asgi_kit import testing

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "docs" / "walkthrough" / "server_timing.py"
START: dict[str, Any] = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"Content-Type", b"text/plain"), (b"Server-Timing", b"db;dur=2")],
}
BODY = {"type": "http.response.body", "body": b"ok"}


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("walkthrough_server_timing", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


walkthrough = load()
ServerTimingMiddleware = walkthrough.ServerTimingMiddleware


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(START)  # the same module-level message on every response
    await send(BODY)


def test_the_page_shows_the_file_as_it_is() -> None:
    page = (ROOT / "docs" / "development.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    assert SOURCE.read_text() in blocks


async def test_adds_timing_next_to_the_apps_own() -> None:
    before = [*START["headers"]]
    response = await testing.request(ServerTimingMiddleware(app), "GET", "/")
    values = response.header_all("server-timing")
    assert values[0] == "db;dur=2"
    assert re.fullmatch(r"app;dur=\d+\.\d", values[1])
    assert START["headers"] == before  # the app's list was never changed
    assert response.header("vary") is None


async def test_excluded_paths_and_other_scopes_pass_through() -> None:
    mw = ServerTimingMiddleware(app, exclude_paths=["/health", "/static/*"])
    for path in ("/health", "/static/app.js"):
        response = await testing.request(mw, "GET", path)
        assert response.header_all("server-timing") == ["db;dur=2"]
    async with testing.lifespan(_lifespan_app(ServerTimingMiddleware)) as state:
        assert state == {}


def _lifespan_app(factory: Any) -> Any:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    return factory(inner)


async def test_only_with_header_gates_and_varies() -> None:
    mw = ServerTimingMiddleware(app, metric="total", precision=0, only_with_header="X-Debug")
    plain = await testing.request(mw, "GET", "/")
    assert plain.header_all("server-timing") == ["db;dur=2"]
    assert plain.header("vary") == "X-Debug"
    debug = await testing.request(mw, "GET", "/", headers=[(b"X-DEBUG", b"1")])
    assert re.fullmatch(r"total;dur=\d+", debug.header_all("server-timing")[1])
    assert debug.header("vary") == "X-Debug"


@pytest.mark.parametrize(
    ("options", "error", "option"),
    [
        ({"metric": 3}, TypeError, "metric"),
        ({"metric": "a b"}, ValueError, "metric"),
        ({"precision": "1"}, TypeError, "precision"),
        ({"precision": 7}, ValueError, "precision"),
        ({"exclude_paths": "/x"}, TypeError, "exclude_paths"),
        ({"only_with_header": "X Bad"}, ValueError, "only_with_header"),
    ],
)
def test_options_are_checked(options: dict[str, Any], error: type, option: str) -> None:
    with pytest.raises(error, match=option):
        ServerTimingMiddleware(app, **options)
    with pytest.raises(TypeError, match="app"):
        ServerTimingMiddleware("app")
