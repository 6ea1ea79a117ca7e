"""Compression Dictionary Transport: a new version compressed against the previous one.

Two cases a site meets on every deploy: a JavaScript bundle whose new
version changes a few functions, and a JSON API response whose new version
changes a few records.  The client holds version 1 (sent earlier with
``Use-As-Dictionary``); version 2 goes out as ``dcz`` (zstd with version 1 as
a raw-content dictionary), against what a client without a dictionary gets:
brotli quality 4 (brotli-asgi's default) and zstd level 3.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import time
from typing import Any

import brotli

from asgi_kit import CompressionMiddleware, _codings

from .driver import App, Scenario, make_scope, optional


def js_bundle(version: int) -> bytes:
    """~200 KB of module code; version 2 edits 2% of the functions and adds a few."""
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for i in range(2000):
        name = "".join(rng.choice(letters) for _ in range(8))
        arg = "".join(rng.choice(letters) for _ in range(5))
        line = (
            f"export function {name}{i}({arg}, opts = {{}}) {{ "
            f"const v = {arg}.{name} ?? {rng.randint(0, 99999)}; "
            f"return opts.fmt ? format(v, '{name}') : v; }}\n"
        )
        if version > 1 and i % 50 == 0:
            line = line.replace("format(v", "formatLocale(v, opts.locale")
        out.append(line)
    if version > 1:
        out.append("export const BUILD = '2026-12-04T05:00:00Z';\n" * 3)
    return "".join(out).encode()


def api_response(version: int) -> bytes:
    """A 300-record JSON list; version 2 changes 5% of the records' prices and stock."""
    rng = random.Random(5)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    rows = []
    for i in range(300):
        row = {
            "id": 10_000 + i,
            "sku": f"SKU-{rng.randint(0, 10**8):08d}",
            "name": " ".join(rng.choice(words) for _ in range(3)),
            "price": round(rng.random() * 500, 2),
            "stock": rng.randint(0, 400),
            "updated": f"2026-11-{rng.randint(1, 30):02d}T{rng.randint(0, 23):02d}:00:00Z",
        }
        if version > 1 and i % 20 == 0:
            row["price"] = round(row["price"] * 1.1, 2)
            row["stock"] = max(0, row["stock"] - 3)
        rows.append(row)
    return json.dumps({"items": rows, "version": version}).encode()


CASES = {
    "JS bundle": (js_bundle(1), js_bundle(2), b"text/javascript"),
    "JSON API response": (api_response(1), api_response(2), b"application/json"),
}


def _app(v1: bytes, v2: bytes, content_type: bytes) -> App:
    headers = [(b"content-type", content_type)]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = v1 if scope["path"].endswith("v1") else v2
        # A fresh list each time: brotli-asgi appends to the app's list, and a
        # reused one makes every later response go out uncompressed.
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body})

    return app


def _warm(mw: CompressionMiddleware) -> None:
    """Send version 1 once, so the middleware knows it as a dictionary."""

    async def discard(message: Any) -> None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(mw(make_scope(path="/r/v1"), receive, discard))


def _dictionary_scope(v1: bytes) -> dict[str, Any]:
    digest = base64.b64encode(hashlib.sha256(v1).digest())
    return make_scope(
        path="/r/v2",
        drop=[b"accept-encoding"],
        extra_headers=[
            (b"accept-encoding", b"gzip, deflate, br, zstd, dcb, dcz"),
            (b"available-dictionary", b":" + digest + b":"),
        ],
    )


def _brotli_asgi(app: App) -> App:
    from brotli_asgi import BrotliMiddleware

    return BrotliMiddleware(app, quality=4, mode="generic", minimum_size=500)


def scenarios() -> list[Scenario]:
    out = []
    for label, (v1, v2, content_type) in CASES.items():
        bare = _app(v1, v2, content_type)
        mw = CompressionMiddleware(bare, dictionaries=[("/r/*", "/r/*")])
        _warm(mw)
        out.append(
            Scenario(
                f"{label} v2 as dcz (dictionary: v1)",
                bare=bare,
                ours=mw,
                anchors={
                    "brotli-asgi (br q4, no dictionary)": optional(lambda b=bare: _brotli_asgi(b))
                },
                scope=_dictionary_scope(v1),
            )
        )
    return out


def _cpu(fn: Any, data: bytes, repeat: int = 30) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn(data)
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e6


def report() -> str:
    lines = [
        "Version 2 on the wire and the CPU to compress it (best of 5), per coding:",
        "",
        "| content | identity | dcz (zstd 3 + v1) | br q4 | zstd 3 | dcz / br |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, (v1, v2, _) in CASES.items():
        digest = hashlib.sha256(v1).digest()
        dcz = _codings.Coding("dcz", 3, dictionary=v1, dictionary_hash=digest)
        zstd = _codings.Coding("zstd", 3)
        cells = {}
        for name, fn in (
            ("dcz", dcz.compress),
            ("br", lambda d: brotli.compress(d, quality=4)),
            ("zstd", zstd.compress),
        ):
            size = len(fn(v2))
            cells[name] = (size, _cpu(fn, v2))
        row = [f"{label}", f"{len(v2):,} B"]
        row += [f"{cells[n][0]:,} B, {cells[n][1]:.0f} µs" for n in ("dcz", "br", "zstd")]
        row.append(f"{cells['dcz'][0] / cells['br'][0]:.3f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
