"""ConditionalGetMiddleware: generated ETags and 304s for 4 KB and 64 KB bodies.

Anchors: asgi-etags (the pure-ASGI ETag middleware on PyPI: hashes the
body with a generator the user passes; given the same BLAKE2b digest here),
and fastapi-etag (a FastAPI dependency computing the tag from the request,
here hashing the same bytes, in a FastAPI app; its overhead is over the bare
FastAPI app).

``report()`` answers the issue's other question: does a 304 cost less than
the 200 it replaces?  It times the whole exchange through the middleware,
with a ``send`` that copies the body into a buffer as a server's transport
does (the driver's ``send`` discards everything, which makes bodies free).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from hashlib import blake2b, md5
from typing import Any

from asgi_kit import ConditionalGetMiddleware

from .driver import App, Scenario, json_app, make_scope, optional

SIZES = {"4 KB": 4 * 1024, "64 KB": 64 * 1024}


def _body(size: int) -> bytes:
    row = b'{"id": 12345, "name": "widget", "tags": ["a", "b"]},'
    return (b"[" + row * (size // len(row) + 1))[: size - 1] + b"]"


def _tag(body: bytes) -> str:
    return '"' + blake2b(body, digest_size=16).hexdigest() + '"'


def _md5_tag(body: bytes) -> str:
    return md5(body).hexdigest()  # the generator asgi-etags' README shows


def _asgi_etags(app: App, generator: Any = _md5_tag) -> App:
    from asgi_etags import ETagMiddleware  # type: ignore[import-not-found,unused-ignore]

    return ETagMiddleware(app, etag_generator=generator)  # type: ignore[no-any-return]


def _fastapi_pair(body: bytes) -> tuple[App, App]:
    """A FastAPI route returning ``body``, bare and with fastapi-etag's dependency."""
    from fastapi import Depends, FastAPI, Response
    from fastapi_etag import Etag, add_exception_handler  # type: ignore[import-not-found,unused-ignore]

    def gen(request: Any) -> str:
        return blake2b(body, digest_size=16).hexdigest()

    bare = FastAPI()
    tagged = FastAPI()
    add_exception_handler(tagged)

    @bare.get("/")
    async def plain() -> Response:
        return Response(body, media_type="application/json")

    @tagged.get("/", dependencies=[Depends(Etag(gen, weak=False))])
    async def with_etag() -> Response:
        return Response(body, media_type="application/json")

    return bare, tagged


def scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    for label, size in SIZES.items():
        body = _body(size)
        bare = json_app(body)
        ours = ConditionalGetMiddleware(bare)
        md5_anchor = {
            "asgi-etags (md5, as documented)": optional(lambda bare=bare: _asgi_etags(bare))  # type: ignore[misc]
        }
        same_hash = {
            "asgi-etags (given our BLAKE2b)": optional(
                lambda bare=bare: _asgi_etags(bare, _tag)  # type: ignore[misc]
            )
        }
        ours_tag, md5_tag = _tag(body).encode(), _md5_tag(body).encode()
        out.append(
            Scenario(
                f"conditional: {label} 200 + ETag",
                bare,
                ours,
                {**md5_anchor, **same_hash},
                goal=0.5,
            )
        )
        # asgi-etags reads the first If-None-Match header only, asgi_kit all of
        # them: with both tags sent, each side answers 304.
        both = make_scope(extra_headers=[(b"if-none-match", md5_tag), (b"if-none-match", ours_tag)])
        out.append(
            Scenario(f"conditional: {label} 304", bare, ours, md5_anchor, scope=both, goal=0.5)
        )
        try:
            import xxhash  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            pass
        else:
            xxh3 = ConditionalGetMiddleware(bare, etag_hash="xxh3")
            xtag = b'"%s"' % xxhash.xxh3_128_hexdigest(body).encode()
            both_xxh3 = make_scope(
                extra_headers=[(b"if-none-match", md5_tag), (b"if-none-match", xtag)]
            )
            out.append(
                Scenario(
                    f"conditional: {label} 304, etag_hash='xxh3'",
                    bare,
                    xxh3,
                    md5_anchor,
                    scope=both_xxh3,
                    goal=0.5,
                )
            )
        out.append(
            Scenario(
                f"conditional: {label} 304 (same hash)",
                bare,
                ours,
                same_hash,
                scope=make_scope(extra_headers=[(b"if-none-match", ours_tag)]),
            )
        )
        try:
            fa_bare, fa_tagged = _fastapi_pair(body)
        except ImportError as exc:
            fastapi_anchor: dict[str, App | str] = {"fastapi-etag": f"not installed ({exc.name})"}
            fa_bare = bare
        else:
            fastapi_anchor = {"fastapi-etag (FastAPI app)": fa_tagged}
        out.append(
            Scenario(
                f"conditional: {label} 304, FastAPI app",
                fa_bare,
                ConditionalGetMiddleware(fa_bare),
                fastapi_anchor,
                # fastapi-etag reads the first header, an unquoted tag as it makes it.
                scope=make_scope(
                    extra_headers=[(b"if-none-match", ours_tag[1:-1]), (b"if-none-match", ours_tag)]
                ),
                goal=0.5,
            )
        )
    tagged_headers = [(b"content-type", b"application/json"), (b"etag", b'"v42"')]
    big = _body(64 * 1024)

    async def app_tagged(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": tagged_headers})
        await send({"type": "http.response.body", "body": big})

    out.append(
        Scenario(
            "conditional: 64 KB 304, app-set ETag (no hash)",
            app_tagged,
            ConditionalGetMiddleware(app_tagged),
            scope=make_scope(extra_headers=[(b"if-none-match", b'"v42"')]),
        )
    )
    return out


async def _exchange_us(app: App, scope: dict[str, Any], requests: int) -> float:
    buffer = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        # What a server does at the least: the bytes go into its write buffer.
        if message["type"] == "http.response.body":
            buffer.extend(message.get("body", b""))
            buffer.clear()

    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        return (time.perf_counter_ns() - start) / requests / 1000
    finally:
        gc.enable()


def report(requests: int = 3000, rounds: int = 7) -> str:
    async def main() -> list[str]:
        lines = [
            "Whole exchange (app + middleware + a server-like send), µs per request, "
            "median of rounds:",
            "",
            "| body | bare 200 | 200 + generated ETag | 304 (hash included) | 304 / 200 |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, size in SIZES.items():
            body = _body(size)
            bare = json_app(body)
            ours = ConditionalGetMiddleware(bare)
            plain = make_scope()
            match = make_scope(extra_headers=[(b"if-none-match", _tag(body).encode())])
            runs: dict[str, list[float]] = {"bare": [], "200": [], "304": []}
            for _ in range(rounds + 1):
                runs["bare"].append(await _exchange_us(bare, plain, requests))
                runs["200"].append(await _exchange_us(ours, plain, requests))
                runs["304"].append(await _exchange_us(ours, match, requests))
            med = {k: statistics.median(v[1:]) for k, v in runs.items()}
            lines.append(
                f"| {label} | {med['bare']:.1f} | {med['200']:.1f} | {med['304']:.1f} "
                f"| {med['304'] / med['200']:.2f} |"
            )
        return lines

    return "\n".join([*asyncio.run(main()), *_socket_lines()])


def _build_socket_app() -> App:
    apps = {f"/{size}": ConditionalGetMiddleware(json_app(_body(size))) for size in SIZES.values()}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await apps[scope["path"]](scope, receive, send)

    return app


#: Served by Uvicorn in :func:`_socket_lines` (``benchmarks.bench_conditional:socket_app``).
socket_app = _build_socket_app()


def _socket_lines(requests: int = 1000, rounds: int = 5) -> list[str]:
    """The same 200-versus-304 question over a socket, one Uvicorn worker."""
    import http.client
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "benchmarks.bench_conditional:socket_app"),
            *("--port", str(port), "--no-access-log", "--log-level", "warning"),
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    return ["(Uvicorn did not start: no socket figures)"]
                time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def run(path: str, headers: dict[str, str]) -> float:
            start = time.perf_counter_ns()
            for _ in range(requests):
                conn.request("GET", path, headers=headers)
                conn.getresponse().read()
            return (time.perf_counter_ns() - start) / requests / 1000

        lines = [
            "",
            "Over a socket (Uvicorn, one worker, keep-alive http.client), µs per request:",
            "",
            "| body | 200 + generated ETag | 304 | 304 / 200 |",
            "|---|---:|---:|---:|",
        ]
        for label, size in SIZES.items():
            path = f"/{size}"
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            tag = response.getheader("etag") or ""
            full: list[float] = []
            cached: list[float] = []
            for _ in range(rounds):
                full.append(run(path, {}))
                cached.append(run(path, {"If-None-Match": tag}))
            f, c = min(full), min(cached)  # noise only ever slows a round down
            lines.append(f"| {label} | {f:.0f} | {c:.0f} | {c / f:.2f} |")
        conn.close()
        return lines
    finally:
        server.terminate()
        server.wait(10)
