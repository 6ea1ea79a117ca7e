"""A page and an API that grow a cookie session past 4 KB, for a real browser."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from asgi_kit import SessionMiddleware

PAGE = b"""<!doctype html><html><body><script>
async function call(method, path) {
  const r = await fetch(path, {method, credentials: "same-origin"});
  return await r.json();
}
(async () => {
  const R = {};
  R.grown = await call("POST", "/grow");
  R.read_large = await call("GET", "/read?step=large");
  R.shrunk = await call("POST", "/shrink");
  R.read_small = await call("GET", "/read?step=small");
  R.cookie_visible_to_script = document.cookie;
  const pre = document.createElement("pre");
  pre.id = "results";
  pre.textContent = JSON.stringify(R);
  document.body.appendChild(pre);
})();
</script></body></html>"""

BLOB = "".join(f"{i:05d}" for i in range(1000))  # 5,000 characters: two cookies
HTML = [(b"Content-Type", b"text/html; charset=utf-8")]
JSON = [(b"Content-Type", b"application/json")]


async def api(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    session = scope["session"]
    path = scope["path"]
    if path == "/":
        await send({"type": "http.response.start", "status": 200, "headers": HTML})
        await send({"type": "http.response.body", "body": PAGE})
        return
    if path == "/grow":
        session["blob"] = BLOB
    elif path == "/shrink":
        session["blob"] = "small"
    blob = session.get("blob", "")
    # The names of the cookies the browser sent with this request.
    sent = b"; ".join(v for k, v in scope["headers"] if k.lower() == b"cookie").decode()
    names = sorted({p.split("=", 1)[0].strip() for p in sent.split(";") if p.strip()})
    body = {
        "length": len(blob),
        "sha256": hashlib.sha256(blob.encode()).hexdigest(),
        "cookies": names,
    }
    await send({"type": "http.response.start", "status": 200, "headers": JSON})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


app = SessionMiddleware(
    api,
    secret_key="browser-test-secret",
    encrypt=os.environ.get("SESSION_ENCRYPT") == "1",
    max_cookie_chunks=3,
)
