"""Headless Chromium driven over the DevTools protocol, for tests where a browser decides.

``CHROMIUM`` is the browser found on PATH (Debian: ``apt-get install
chromium``).  ``require_chromium()`` skips a test module when it is missing,
except under ``CI=true``, where a missing browser is a failure: CI installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)


def require_chromium() -> None:
    """Skip the calling test module without Chromium; fail instead under ``CI=true``."""
    if CHROMIUM is not None:
        return
    reason = "Chromium is not installed (Debian: apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must install it", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


WAIT_FOR_RESULTS = """new Promise((resolve) => {
  const t = setInterval(() => {
    const el = document.getElementById("results");
    if (el) { clearInterval(t); resolve(el.textContent); }
  }, 25);
})"""


class Browser:
    """Headless Chromium with a DevTools endpoint; pages run one at a time."""

    def __init__(self) -> None:
        assert CHROMIUM is not None
        self.profile = tempfile.mkdtemp(prefix="asgi-kit-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while True:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    lines = f.read().splitlines()
                if len(lines) >= 2:
                    self.port = int(lines[0])
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("Chromium did not start")
            time.sleep(0.05)

    def run(self, url: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Open ``url``; return the page's results and the network log by URL."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            target = json.load(response)
        network: dict[str, dict[str, Any]] = {}
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
            counter = 0

            def call(method: str, **params: Any) -> dict[str, Any]:
                nonlocal counter
                counter += 1
                ws.send(json.dumps({"id": counter, "method": method, "params": params}))
                while True:
                    message = json.loads(ws.recv(timeout=30))
                    if message.get("id") == counter:
                        if "error" in message:
                            raise RuntimeError(f"{method}: {message['error']}")
                        return dict(message["result"])
                    _record(message, network)

            call("Network.enable")
            call("Page.navigate", url=url)
            result = call(
                "Runtime.evaluate",
                expression=WAIT_FOR_RESULTS,
                awaitPromise=True,
                returnByValue=True,
                timeout=30000,
            )
            assert "exceptionDetails" not in result, result
        by_url = {entry["url"]: entry for entry in network.values() if "url" in entry}
        return json.loads(result["result"]["value"]), by_url

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        shutil.rmtree(self.profile, ignore_errors=True)


def _record(message: dict[str, Any], network: dict[str, dict[str, Any]]) -> None:
    params = message.get("params", {})
    method = message.get("method")
    if method == "Network.requestWillBeSent":
        entry = network.setdefault(params["requestId"], {})
        entry["url"] = params["request"]["url"]
    elif method == "Network.requestWillBeSentExtraInfo":
        headers = {k.lower(): v for k, v in params["headers"].items()}
        network.setdefault(params["requestId"], {})["request_headers"] = headers
    elif method == "Network.responseReceived":
        response = params["response"]
        entry = network.setdefault(params["requestId"], {})
        entry["status"] = response["status"]
        entry["headers"] = {k.lower(): v for k, v in response["headers"].items()}


def browser_session() -> Iterator[Browser]:
    """A browser per test module: ``browser = pytest.fixture(scope="module")(browser_session)``"""
    chromium = Browser()
    try:
        yield chromium
    finally:
        chromium.close()
