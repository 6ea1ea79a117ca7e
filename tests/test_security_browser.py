"""CSRFMiddleware and CSP nonces as a real browser (headless Chromium) meets them.

One server, two origins: a page from ``http://localhost:PORT`` (a different
site from ``http://127.0.0.1:PORT``, since each host is its own site) posts
with ``fetch`` and with a form, to its own origin and to the other one.
Chromium decides what ``Sec-Fetch-Site`` and ``Origin`` say; the app records
which requests reached it.  The page's inline script only runs because it
carries the request's CSP nonce; an inline script without it must not run.
Under ``CI=true`` a missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(
            "CI=true and Chromium is not installed (Debian: apt-get install chromium)"
        )
    pytest.skip(
        "Chromium is not installed (Debian: apt-get install chromium)", allow_module_level=True
    )

# The browser driver and its fixture (needs Chromium, checked above).
from .test_browser import Browser, browser  # noqa: E402, F401


@pytest.mark.parametrize("live_server", ["uvicorn"], indirect=True)
def test_cross_site_posts_refused_same_origin_pass(
    browser: Browser,  # noqa: F811 (the fixture imported above)
    live_server: LiveServerFactory,
) -> None:
    server = live_server("tests.apps.security_app:app")
    results, _ = browser.run(f"http://localhost:{server.port}/page")
    seen = httpx.get(f"{server.url}/hits").json()
    app_tags = {hit["tag"]: hit for hit in seen["app"]}
    server_tags = {entry["tag"]: entry for entry in seen["server"]}

    # The nonce'd script ran; the inline script without the nonce did not.
    assert results["unnonced"] == "undefined", results

    # Same origin: fetch POST and form POST reach the app.
    assert results["fetch_same"] == 200, results
    assert app_tags["fetch-same"]["sec_fetch_site"] == "same-origin"
    assert results["form_same"] == "loaded"
    assert results["form_same_body"] == "submitted by POST"
    assert app_tags["form-same"]["method"] == "POST"

    # Cross site: the browser sent them (the server saw them, marked cross-site
    # with the page's Origin), and CSRFMiddleware refused them before the app.
    for tag in ("fetch-cross", "fetch-cross-cors", "form-cross"):
        entry = server_tags.get(tag)
        assert entry is not None, (tag, seen)
        assert entry["method"] == "POST"
        assert entry["headers"]["sec-fetch-site"] == "cross-site"
        assert entry["headers"]["origin"] == f"http://localhost:{server.port}"
        assert entry["status"] == 403, entry
        assert tag not in app_tags
    # The script cannot read a cross-origin answer without CORS either way.
    assert "Failed to fetch" in str(results["fetch_cross_cors"])

    # A cross-site GET is untouched (safe method).
    assert app_tags["get-cross"]["method"] == "GET"
    assert app_tags["get-cross"]["sec_fetch_site"] == "cross-site"
    assert server_tags["get-cross"]["status"] == 200
