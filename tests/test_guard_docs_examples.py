"""The raw ASGI and FastAPI examples of docs/limits.md and docs/conditional.md run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ._support.asgi import asgi_client, call_http

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECTION = re.compile(r"^### (Raw ASGI|FastAPI)\n\n```python\n(.*?)^```", re.M | re.S)


def _examples(page: str) -> dict[str, str]:
    return dict(SECTION.findall((DOCS / page).read_text()))


def _run(code: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, "<docs example>", "exec"), namespace)
    return namespace["app"]


def test_both_pages_have_both_examples() -> None:
    for page in ("limits.md", "conditional.md"):
        assert set(_examples(page)) == {"Raw ASGI", "FastAPI"}, page


async def test_limits_raw_asgi_example() -> None:
    app = _run(_examples("limits.md")["Raw ASGI"])
    ok = await call_http(app, "POST", "/", headers={"content-length": "5"}, body=b"hello")
    assert (ok.status, ok.body) == (200, b"5 bytes")
    big = await call_http(app, "POST", "/", headers={"content-length": str(100 * 1024)})
    assert big.status == 413
    upload = await call_http(
        app, "POST", "/upload/x", headers={"content-length": str(100 * 1024)}, body=b"x" * 102400
    )
    assert upload.status == 200


async def test_limits_fastapi_example() -> None:
    app = _run(_examples("limits.md")["FastAPI"])
    async with asgi_client(app) as client:
        assert (await client.post("/items", json={"a": 1})).json() == {"a": 1}
        big = await client.post("/items", content=b"x" * (2 * 1024 * 1024))
        assert big.status_code == 413


async def test_conditional_raw_asgi_example() -> None:
    app = _run(_examples("conditional.md")["Raw ASGI"])
    first = await call_http(app, "GET", "/")
    tag = first.header("etag")
    assert tag
    again = await call_http(app, "GET", "/", headers={"if-none-match": tag})
    assert again.status == 304
    assert again.header("cache-control") == "no-cache"


async def test_conditional_fastapi_example() -> None:
    app = _run(_examples("conditional.md")["FastAPI"])
    async with asgi_client(app) as client:
        items = await client.get("/items")
        tag = items.headers["etag"]
        assert (await client.get("/items", headers={"if-none-match": tag})).status_code == 304
        report = await client.get("/report")
        assert report.headers["etag"] == '"report-v42"'
        cached = await client.get("/report", headers={"if-none-match": 'W/"report-v42"'})
        assert cached.status_code == 304
