"""The full-stack demo driven by a real browser (headless Chromium over CDP).

A page served from a second origin runs ``fetch``, ``EventSource`` and
``WebSocket`` against the demo: a credentialed request with a custom header
(so a preflight), exposed headers, a 429 and a 500 read cross-origin, a
Server-Sent Events stream through brotli, and WebSocket origin checks.  The
browser decides what a script may read, which is what CORS is for; no HTTP
client library checks that.  Optional: skipped when Chromium is not
installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from websockets.sync.client import connect

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
if CHROMIUM is None:
    pytest.skip(
        "Chromium is not installed (Debian: apt-get install chromium)", allow_module_level=True
    )

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

# The page on an allowed origin.  DEMO is the demo's base URL.
ALLOWED_PAGE = """
const R = {};
async function step(name, fn) {
  try { R[name] = await fn(); } catch (e) { R[name] = {error: String(e)}; }
}
function within(ms, p) {
  return Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error("timeout")), ms))]);
}
function socket(url, text) {
  return within(8000, new Promise((resolve) => {
    const ws = new WebSocket(url), res = {opened: false};
    ws.onopen = () => { res.opened = true; ws.send(text); };
    ws.onmessage = (ev) => { res.echo = ev.data; ws.close(); };
    ws.onclose = () => resolve(res);
  }));
}
async function run() {
  await step("session", async () => {
    const out = [];
    for (let i = 0; i < 2; i++) {
      const r = await fetch(DEMO + "/session",
        {method: "PUT", credentials: "include", headers: {"X-Request-ID": "browser-" + i}});
      out.push({status: r.status, body: await r.json(), request_id: r.headers.get("x-request-id")});
    }
    return out;
  });
  await step("limited", async () => {
    const statuses = [];
    let r;
    for (let i = 0; i < 6; i++) {
      r = await fetch(DEMO + "/limited", {credentials: "include"});
      statuses.push(r.status);
    }
    return {statuses, retry_after: r.headers.get("retry-after")};
  });
  await step("json", async () => {
    const r = await fetch(DEMO + "/");
    return {status: r.status, items: (await r.json()).items.length};
  });
  await step("events", () => within(8000, new Promise((resolve) => {
    const got = [], es = new EventSource(DEMO + "/events");
    es.onmessage = (ev) => {
      got.push([ev.lastEventId, ev.data, performance.now()]);
      if (got.length === 5) { es.close(); resolve(got); }
    };
    es.onerror = () => { es.close(); resolve(got); };
  })));
  const ws = DEMO.replace("http", "ws") + "/ws";
  await step("websocket", () => socket(ws, "hi " + location.origin));
  await step("error", async () => (await fetch(DEMO + "/error")).status);
}
"""

# The page on an origin the demo does not allow.
DENIED_PAGE = """
const R = {};
async function run() {
  R.websocket = await new Promise((resolve) => {
    const ws = new WebSocket(DEMO.replace("http", "ws") + "/ws"), res = {opened: false};
    ws.onopen = () => { res.opened = true; ws.send("x"); };
    ws.onmessage = (ev) => { res.echo = ev.data; ws.close(); };
    ws.onclose = () => resolve(res);
    setTimeout(() => resolve({timeout: true}), 8000);
  });
  try { R.fetch = (await fetch(DEMO + "/")).status; } catch (e) { R.fetch = String(e); }
}
"""

# Runs the page's script, then writes the results into the DOM for the driver.
PAGE = """<!doctype html><title>asgi_kit browser test</title><body>
<script>const DEMO = %s;
%s
run().then(() => {
  const pre = document.createElement("pre");
  pre.id = "results";
  pre.textContent = JSON.stringify(R);
  document.body.appendChild(pre);
});
</script>"""

WAIT_FOR_RESULTS = """new Promise((resolve) => {
  const t = setInterval(() => {
    const el = document.getElementById("results");
    if (el) { clearInterval(t); resolve(el.textContent); }
  }, 25);
})"""


class PageServer:
    """Serves one HTML page on 127.0.0.1 (a second origin besides the demo)."""

    def __init__(self, script: str) -> None:
        #: The demo's base URL, set once the demo runs (it needs this page's port first).
        self.demo_url = ""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (PAGE % (json.dumps(page.demo_url), script)).encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Browser()
    try:
        yield chromium
    finally:
        chromium.close()


def test_demo_from_a_browser(browser: Browser, live_server: LiveServerFactory) -> None:
    allowed = PageServer(ALLOWED_PAGE)
    denied = PageServer(DENIED_PAGE)
    try:
        # The demo allows http://{DEMO_HOST}:{DEMO_PORT}: point that at the page.
        # "localhost" on both sides keeps the demo's session cookie same-site.
        env = {"DEMO_HOST": "localhost", "DEMO_PORT": str(allowed.port)}
        server = live_server("full_stack:app", env=env)
        demo = allowed.demo_url = denied.demo_url = f"http://localhost:{server.port}"
        origin = f"http://localhost:{allowed.port}"

        results, network = browser.run(f"{origin}/")

        # A credentialed PUT with a custom header: preflight, then the session cookie works.
        session = results["session"]
        assert [r["status"] for r in session] == [200, 200], results
        assert [r["body"]["count"] for r in session] == [1, 2]
        # X-Request-ID is listed in expose_headers, so the script may read it.
        assert [r["request_id"] for r in session] == ["browser-0", "browser-1"]
        # The 429 (and its exposed Retry-After) is readable cross-origin.
        assert results["limited"]["statuses"] == [200] * 5 + [429], results
        assert results["limited"]["retry_after"] is not None
        # So is the 500 of a raising view: the error has CORS headers.
        assert results["error"] == 500
        # JSON and Server-Sent Events come compressed (zstd, the cheapest coding
        # Chromium takes, as zstd is installed) and decode in the browser.
        assert results["json"] == {"status": 200, "items": 40}
        for path in ("/", "/events"):
            entry = network[demo + path]
            assert "zstd" in entry["request_headers"]["accept-encoding"]
            assert entry["headers"]["content-encoding"] == "zstd"
            assert entry["headers"]["access-control-allow-origin"] == origin
        events = results["events"]
        assert [(e[0], e[1]) for e in events] == [(str(i), f"event {i}") for i in range(5)]
        # The app sleeps 50 ms between events: they arrive one by one, not at the end.
        assert events[-1][2] - events[0][2] > 100
        # The WebSocket from the allowed origin echoes.
        assert results["websocket"] == {"opened": True, "echo": f"hi {origin}"}

        refused, _ = browser.run(f"http://127.0.0.1:{denied.port}/")
        # Another origin: the handshake is refused and fetch is blocked by the browser.
        assert refused["websocket"] == {"opened": False}, refused
        assert "Failed to fetch" in refused["fetch"]
    finally:
        allowed.close()
        denied.close()
