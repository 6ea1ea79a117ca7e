"""A small raw-ASGI app behind the guard middleware, for the browser and server tests.

A WebSocket connection is accepted with a ``welcome`` message.
``GET /page`` serves an HTML page whose inline script carries the request's
CSP nonce; ``/submit`` accepts any method (a state-changing endpoint);
every request that reaches the app is recorded and served on ``GET /hits``
(safe, so CSRF lets it through), with the ``tag`` query parameter the page
gives each request.  The page sends its cross-site requests to
``http://127.0.0.1:<port>`` (the page itself is loaded from ``localhost``).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from asgi_kit import CSRFMiddleware, SecurityHeadersMiddleware, TrustedHostMiddleware
from asgi_kit._http import send_json, send_response
from asgi_kit.types import ASGIApp, Receive, Scope, Send

HITS: list[dict[str, str]] = []
#: Every request the server received (outside the guards), with the status sent.
SEEN: list[dict[str, object]] = []

PAGE = """<!doctype html><title>asgi_kit CSRF check</title>
<iframe name="same"></iframe><iframe name="cross"></iframe>
<form id="same-form" method="post" action="/submit?tag=form-same" target="same">
  <input name="x" value="1"></form>
<form id="cross-form" method="post" action="%(other)s/submit?tag=form-cross" target="cross">
  <input name="x" value="1"></form>
<script>window.unnonced = true;</script>
<script nonce="%(nonce)s">
const OTHER = %(other_json)s;
const R = {unnonced: typeof window.unnonced};
function loaded(name, form) {
  return new Promise((resolve) => {
    const frame = document.querySelector(`iframe[name=${name}]`);
    const timer = setTimeout(() => resolve("timeout"), 8000);
    frame.onload = () => { clearTimeout(timer); resolve("loaded"); };
    document.getElementById(form).submit();
  });
}
async function status(url, options) {
  try { return (await fetch(url, options)).status; } catch (e) { return String(e); }
}
async function run() {
  R.fetch_same = await status("/submit?tag=fetch-same", {method: "POST", body: "x=1"});
  R.fetch_cross = await status(OTHER + "/submit?tag=fetch-cross",
                               {method: "POST", body: "x=1", mode: "no-cors"});
  R.fetch_cross_cors = await status(OTHER + "/submit?tag=fetch-cross-cors",
                                    {method: "POST", body: "x=1"});
  R.get_cross = await status(OTHER + "/submit?tag=get-cross", {mode: "no-cors"});
  R.form_same = await loaded("same", "same-form");
  try {
    R.form_same_body = document.querySelector("iframe[name=same]").contentDocument.body.innerText;
  } catch (e) { R.form_same_body = String(e); }
  R.form_cross = await loaded("cross", "cross-form");
}
run().then(() => {
  const pre = document.createElement("pre");
  pre.id = "results";
  pre.textContent = JSON.stringify(R);
  document.body.appendChild(pre);
});
</script>"""


async def router(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "welcome"})
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode("latin-1"))
    if path == "/hits":
        await send_json(send, 200, {"app": HITS, "server": SEEN})
        return
    HITS.append(
        {
            "method": scope["method"],
            "path": path,
            "tag": query.get("tag", [""])[0],
            "sec_fetch_site": next(
                (v.decode() for k, v in scope["headers"] if k == b"sec-fetch-site"), ""
            ),
        }
    )
    if path == "/page":
        other = f"http://127.0.0.1:{scope['server'][1]}"
        body = PAGE % {
            "nonce": scope["state"]["csp_nonce"],
            "other": other,
            "other_json": json.dumps(other),
        }
        await send_response(send, 200, body.encode(), b"text/html; charset=utf-8")
    elif path == "/submit":
        await send_response(send, 200, f"submitted by {scope['method']}".encode())
    else:
        await send_response(send, 404, b"not found")


def _record(app: ASGIApp) -> ASGIApp:
    async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/hits":
            await app(scope, receive, send)
            return
        entry: dict[str, object] = {
            "method": scope["method"],
            "tag": parse_qs(scope["query_string"].decode("latin-1")).get("tag", [""])[0],
            "headers": {k.decode(): v.decode("latin-1") for k, v in scope["headers"]},
        }
        SEEN.append(entry)

        async def send_status(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)  # type: ignore[arg-type]

        await app(scope, receive, send_status)  # type: ignore[arg-type]

    return recorder


def build() -> ASGIApp:
    app: ASGIApp = CSRFMiddleware(router)
    app = SecurityHeadersMiddleware(
        app,
        # Scripts and styles by nonce only; requests and frames may go to the
        # other origin (the port is only known at run time, hence "*").
        content_security_policy={
            "default-src": "'self'",
            "connect-src": "*",
            "frame-src": "*",
            "form-action": "*",
        },
        csp_nonce=True,
        frame_options="SAMEORIGIN",
    )
    return _record(TrustedHostMiddleware(app, allowed_hosts=["127.0.0.1", "localhost"]))


app = build()
