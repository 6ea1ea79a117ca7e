"""Server-side app for the Compression Dictionary Transport browser test.

``/`` is a page that fetches ``/static/app.v1.js`` (declared a dictionary),
then ``/static/app.v2.js`` (which matches it), and shows the SHA-256 of what
the browser decoded.  A layer outside the middleware writes what went on the
wire for each response to the JSON-lines file named by ``DICTIONARY_WIRE_LOG``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from typing import Any

from asgi_kit import CompressionMiddleware
from asgi_kit.compression import Dictionary


def bundle(version: int) -> bytes:
    """A JS bundle; version 2 is version 1 with a few functions changed."""
    rng = random.Random(11)
    parts = []
    for i in range(800):
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(9))
        body = f"return {name}.call(this, {rng.randint(0, 10**6)}, '{name}{i}');"
        if version > 1 and i % 61 == 0:
            body = body.replace("call", f"apply /* v{version} */")
        parts.append(f"export function {name}_{i}(x) {{ {body} }}\n")
    return "".join(parts).encode()


V1 = bundle(1)
V2 = bundle(2)

PAGE = b"""<!doctype html><title>dictionary transport</title><body><script>
async function digest(buf) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}
async function get(url) {
  const r = await fetch(url);
  const buf = await r.arrayBuffer();
  return {status: r.status, length: buf.byteLength, sha256: await digest(buf)};
}
async function run() {
  const R = {};
  try {
    R.v1 = await get("/static/app.v1.js");
    // The dictionary is usable once its response is stored in the cache.
    await new Promise((resolve) => setTimeout(resolve, 500));
    R.v2 = await get("/static/app.v2.js");
  } catch (e) { R.error = String(e); }
  const pre = document.createElement("pre");
  pre.id = "results";
  pre.textContent = JSON.stringify(R);
  document.body.appendChild(pre);
}
run();
</script>"""

# One header list for every JS response, as real apps keep module constants.
JS_HEADERS = [(b"Content-Type", b"text/javascript; charset=utf-8")]


async def site(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]
        body = PAGE
    elif path in ("/static/app.v1.js", "/static/app.v2.js"):
        headers, body = JS_HEADERS, (V1 if path.endswith("v1.js") else V2)
    else:
        headers, body = [(b"content-type", b"text/plain")], b"not found"
    await send(
        {
            "type": "http.response.start",
            "status": 200 if body != b"not found" else 404,
            "headers": headers,
        }
    )
    await send({"type": "http.response.body", "body": body})


def wire_log(app: Any, path: str | None) -> Any:
    """Record each response as sent: path, request and response headers, body hash."""

    async def logged(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not path:
            await app(scope, receive, send)
            return
        record: dict[str, Any] = {
            "path": scope["path"],
            "request": {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            },
        }
        body = hashlib.sha256()
        size = 0

        async def send_logged(message: dict[str, Any]) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
                record["headers"] = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]
                }
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                body.update(chunk)
                size += len(chunk)
                if not message.get("more_body", False):
                    record["wire_sha256"] = body.hexdigest()
                    record["wire_length"] = size
                    with open(path, "a") as f:
                        f.write(json.dumps(record) + "\n")
            await send(message)

        await app(scope, receive, send_logged)

    return logged


DICTIONARIES = [Dictionary("/static/app.*.js", "/static/app.*.js", max_age=3600)]
app = wire_log(
    CompressionMiddleware(site, dictionaries=DICTIONARIES),
    os.environ.get("DICTIONARY_WIRE_LOG"),
)
