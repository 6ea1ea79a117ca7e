"""Headless Chromium keeps and sends a cookie session split across several cookies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from ._support.servers import LiveServerFactory
from .apps.sessions_browser_app import BLOB
from .test_browser import Browser

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    browser = Browser()
    try:
        yield browser
    finally:
        browser.close()


@pytest.mark.parametrize("encrypt", ["0", "1"])
def test_chromium_round_trips_a_chunked_session(chromium: Browser, encrypt: str) -> None:
    servers = LiveServerFactory("uvicorn")
    try:
        server = servers("tests.apps.sessions_browser_app:app", env={"SESSION_ENCRYPT": encrypt})
        base = f"http://localhost:{server.port}"
        results, _ = chromium.run(f"{base}/")
    finally:
        servers.close()
    digest = hashlib.sha256(BLOB.encode()).hexdigest()
    assert results["grown"]["sha256"] == digest
    # The next request carried both parts, and the session came back whole.
    assert results["read_large"] == {
        "length": len(BLOB),
        "sha256": digest,
        "cookies": ["session", "session-1"],
    }
    # Shrinking expired the extra part in the browser's jar.
    assert results["shrunk"]["length"] == len("small")
    assert results["read_small"]["length"] == len("small")
    assert results["read_small"]["cookies"] == ["session"]
    # HttpOnly: the page's script sees none of it.
    assert results["cookie_visible_to_script"] == ""
