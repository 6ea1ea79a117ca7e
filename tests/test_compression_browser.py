"""Compression Dictionary Transport (RFC 9842) judged by headless Chromium.

The page fetches a response declared as a dictionary, waits for the browser
to store it, then fetches a resource its ``match`` pattern covers.  Chromium
decides on its own whether to advertise ``dcz`` and ``Available-Dictionary``
(it does for ``http://localhost``, a secure context, and only once it holds
a dictionary); the server-side wire log shows what was sent, and the page
reports the SHA-256 of what the browser decoded, which must be the original
bytes.  Under ``CI=true`` a missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from ._support.servers import LiveServerFactory
from .apps.dictionary_app import V1, V2

pytestmark = pytest.mark.e2e

if not any(map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))):
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true and Chromium is not installed", pytrace=False)
    pytest.skip(
        "Chromium is not installed (Debian: apt-get install chromium)", allow_module_level=True
    )

# The browser driver and its fixture (needs Chromium, checked above).
from .test_browser import Browser, browser  # noqa: E402, F401


def test_chromium_decodes_dcz(
    browser: Browser,  # noqa: F811
    live_server: LiveServerFactory,
    tmp_path: Path,
) -> None:
    log = tmp_path / "wire.jsonl"
    server = live_server("tests.apps.dictionary_app:app", env={"DICTIONARY_WIRE_LOG": str(log)})
    results, _ = browser.run(f"http://localhost:{server.port}/")
    assert "error" not in results, results

    sent = {r["path"]: r for r in map(json.loads, log.read_text().splitlines())}
    first, second = sent["/static/app.v1.js"], sent["/static/app.v2.js"]
    # The dictionary went out marked, compressed as usual, and cacheable.
    assert first["headers"]["use-as-dictionary"] == 'match="/static/app.*.js"'
    assert first["headers"]["cache-control"] == "max-age=3600"
    # Chromium named it by its hash, and the server answered with dcz.
    digest = hashlib.sha256(V1).digest()
    assert "dcz" in second["request"]["accept-encoding"]
    assert second["request"]["available-dictionary"] == f":{base64.b64encode(digest).decode()}:"
    assert second["headers"]["content-encoding"] == "dcz"
    assert second["headers"]["vary"] == "Accept-Encoding, Available-Dictionary"
    assert second["wire_length"] * 10 < len(V2)
    # What the page read is byte for byte the original of each.
    for name, original in (("v1", V1), ("v2", V2)):
        expected = {"status": 200, "length": len(original)}
        expected["sha256"] = hashlib.sha256(original).hexdigest()  # type: ignore[assignment]
        assert results[name] == expected, name
