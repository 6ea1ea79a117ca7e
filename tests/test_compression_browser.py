"""Compression Dictionary Transport (RFC 9842) judged by headless Chromium.

The page fetches a response declared as a dictionary, waits for the browser
to store it, then fetches a resource its ``match`` pattern covers.  Chromium
decides on its own whether to advertise ``dcz`` and ``Available-Dictionary``
(it does for ``http://localhost``, a secure context); the server-side wire log
shows what was sent, and the page reports the SHA-256 of what the browser
decoded, which must be the original bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from ._support.browser import Browser, browser_session, require_chromium
from ._support.servers import LiveServerFactory
from .apps.dictionary_app import V1, V2

pytestmark = pytest.mark.e2e

require_chromium()


browser = pytest.fixture(scope="module", name="browser")(browser_session)


def test_chromium_decodes_dcz(
    browser: Browser, live_server: LiveServerFactory, tmp_path: Path
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
    assert second["request"]["available-dictionary"] == f":{base64.b64encode(digest).decode()}:"
    assert second["headers"]["content-encoding"] == "dcz"
    assert second["headers"]["vary"] == "Accept-Encoding, Available-Dictionary"
    assert second["wire_length"] * 10 < len(V2)
    # What the page read is byte for byte the original of each.
    assert results["v1"] == {
        "status": 200,
        "length": len(V1),
        "sha256": hashlib.sha256(V1).hexdigest(),
    }
    assert results["v2"] == {
        "status": 200,
        "length": len(V2),
        "sha256": hashlib.sha256(V2).hexdigest(),
    }
