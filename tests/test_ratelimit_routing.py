"""Rate-limit rules count every request the framework runs the limited handler for.

Issue: a rule for ``POST /login`` was walked around with ``post``, a GET
rule with ``HEAD``, a path rule with ``/login/``, ``//login`` or ``/./login``.
For Starlette, FastAPI, Litestar and Django (ASGI and WSGI, through the
``MIDDLEWARE`` adapter), in process and over Uvicorn (h11 and httptools),
Hypercorn and Daphne, each check sends the spellings and asserts that the
handler never ran more often than the limit and that the canonical request
is refused afterwards.  Hypothesis then generates path spellings and checks
that every answer the limited handler gave carried the rule's headers.

The apps are in ``tests/apps/ratelimit_routing*.py``.
"""

from __future__ import annotations

import asyncio
import io
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._support.asgi import call_http, http_scope
from ._support.servers import ServerProcess
from .apps.ratelimit_routing import LIMIT, runs_of

# (status, lower-cased response headers)
Answer = tuple[int, dict[str, str]]
Send = Callable[[str, str, str], Answer]

ASGI_APPS = {
    "starlette": "tests.apps.ratelimit_routing:starlette_app",
    "fastapi": "tests.apps.ratelimit_routing:fastapi_app",
    "litestar": "tests.apps.ratelimit_routing:litestar_app",
    "django": "tests.apps.ratelimit_routing_django_asgi:application",
}
DJANGO_ENV = {"DJANGO_SETTINGS_MODULE": "tests.apps.ratelimit_routing_django_settings"}


def canonical(framework: str, path: str) -> str:
    """The path the framework's own URL uses (Django's end in ``/``)."""
    return path + "/" if framework.startswith("django") else path


def spellings(path: str) -> list[str]:
    """Ways to write ``path`` that some router treats as ``path`` (issue 14)."""
    head, _, last = path.rstrip("/").rpartition("/")
    encoded = f"{head}/%{ord(last[0]):02X}{last[1:]}"  # a percent-encoded letter
    return [
        path,
        path.rstrip("/") + "/",
        path.rstrip("/"),
        "/" + path,  # //x
        path.rstrip("/") + "//",
        f"{head}/./{last}",
        f"{head}/x/../{last}",
        encoded,
        "//" + path.lstrip("/") + "/",
    ]


def check_all(framework: str, send: Send, runs: Callable[[str], dict[str, int]]) -> None:
    def then_refused(method: str, path: str, client: str, handler: str) -> None:
        # Whatever the spellings before did, the canonical request is refused
        # by the time the limit is used up, and the handler never ran more.
        statuses = [send(method, path, client)[0] for _ in range(LIMIT + 1)]
        assert statuses[-1] == 429, (framework, path, statuses)
        assert 1 <= runs(client).get(handler, 0) <= LIMIT, (framework, runs(client))

    # Method case: POST, post, Post... all count against the POST rule.
    client = uuid.uuid4().hex
    login = canonical(framework, "/login")
    for method in ("POST", "post", "Post", "pOST", "POST", "post", "Post", "poSt"):
        send(method, login, client)
    assert runs(client).get("login", 0) <= LIMIT, (framework, runs(client))
    then_refused("POST", login, client, "login")

    # HEAD runs the GET handler (or its own HEAD handler): a GET rule counts it.
    client = uuid.uuid4().hex
    page = canonical(framework, "/page")
    for method in ("HEAD", "head", "HEAD", "Head", "GET", "get", "HEAD"):
        send(method, page, client)
    assert runs(client).get("page", 0) <= LIMIT, (framework, runs(client))
    then_refused("HEAD", page, client, "page")
    assert send("GET", page, client)[0] == 429

    # Path spellings: slashes, dot segments, a percent-encoded letter.
    client = uuid.uuid4().hex
    for spelling in spellings(canonical(framework, "/limited")) * 2:
        send("GET", spelling, client)
    assert runs(client).get("limited", 0) <= LIMIT, (framework, runs(client))
    then_refused("GET", canonical(framework, "/limited"), client, "limited")

    # A route template: every path of the route counts against one bucket.
    client = uuid.uuid4().hex
    for n in range(1, 8):
        item = canonical(framework, f"/items/{n}")
        send("GET", item if n % 2 else "/" + item, client)
    assert runs(client).get("item", 0) <= LIMIT, (framework, runs(client))
    then_refused("GET", canonical(framework, "/items/99"), client, "item")


# --------------------------------------------------------------------------- in process


def _asgi_sender(app: Any) -> Send:
    def send(method: str, raw: str, client: str) -> Answer:
        # As a server builds the scope: path percent-decoded, raw_path as sent.
        scope = http_scope(method, unquote(raw), {"x-client": client})
        scope["raw_path"] = raw.encode("ascii")

        async def run() -> Answer:
            answer = await call_http(app, scope=scope)
            return answer.status, {k.decode().lower(): v.decode() for k, v in answer.headers}

        return asyncio.run(run())

    return send


@contextmanager
def django_settings() -> Iterator[None]:
    from django.test import override_settings

    from tests.apps import ratelimit_routing_django_settings as conf
    from tests.apps.django_project import configure

    configure()
    with override_settings(
        ROOT_URLCONF=conf.ROOT_URLCONF, MIDDLEWARE=conf.MIDDLEWARE, ASGI_KIT=conf.ASGI_KIT
    ):
        yield


def _wsgi_sender(handler: Any) -> Send:
    from wsgiref.util import setup_testing_defaults

    def send(method: str, raw: str, client: str) -> Answer:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            # WSGI servers percent-decode PATH_INFO (as latin-1 text, PEP 3333).
            "PATH_INFO": unquote(raw, encoding="latin-1"),
            "HTTP_X_CLIENT": client,
            "wsgi.input": io.BytesIO(b""),
        }
        setup_testing_defaults(environ)
        status: list[str] = []
        headers: dict[str, str] = {}

        def start_response(line: str, items: list[tuple[str, str]], exc: Any = None) -> None:
            status.append(line)
            headers.update((k.lower(), v) for k, v in items)

        body = handler(environ, start_response)
        try:
            b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        return int(status[0].split()[0]), headers

    return send


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar"])
def test_in_process(framework: str) -> None:
    from tests.apps import ratelimit_routing

    app = getattr(ratelimit_routing, f"{framework}_app")
    check_all(framework, _asgi_sender(app), runs_of)


def test_in_process_django_asgi() -> None:
    with django_settings():
        from django.core.handlers.asgi import ASGIHandler

        check_all("django", _asgi_sender(ASGIHandler()), runs_of)


def test_in_process_django_wsgi() -> None:
    with django_settings():
        from django.core.handlers.wsgi import WSGIHandler

        check_all("django-wsgi", _wsgi_sender(WSGIHandler()), runs_of)


# --------------------------------------------------------------------------- real servers


def raw_request(url: str, method: str, path: str, headers: dict[str, str]) -> Answer:
    """One HTTP/1.1 request with the method and path bytes exactly as given.

    httpx (like browsers) upper-cases methods and removes dot segments, so it
    cannot send the spellings under test.
    """
    parts = urlsplit(url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method.upper() not in ("GET", "HEAD"):
        lines.append("Content-Length: 0")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    if not head:
        return 0, {}  # the server closed the connection on a request it refused
    status_line, *header_lines = head.split("\r\n")
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), found


SERVERS = {
    "uvicorn-h11": ("uvicorn", ["--http", "h11"]),
    "uvicorn-httptools": ("uvicorn", ["--http", "httptools"]),
    "hypercorn": ("hypercorn", []),
    "daphne": ("daphne", []),
}


@pytest.mark.e2e
@pytest.mark.timeout(120)
@pytest.mark.parametrize("server", list(SERVERS))
@pytest.mark.parametrize("framework", list(ASGI_APPS))
def test_over_real_servers(framework: str, server: str) -> None:
    import json

    kind, args = SERVERS[server]
    env = DJANGO_ENV if framework == "django" else None
    proc = ServerProcess(kind, ASGI_APPS[framework], env=env, args=args)
    try:

        def send(method: str, path: str, client: str) -> Answer:
            return raw_request(proc.url, method, path, {"X-Client": client})

        def runs(client: str) -> dict[str, int]:
            path = canonical(framework, "/runs")
            with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Client: {client}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if b"chunked" in head.lower():
                size, _, rest = body.partition(b"\r\n")
                body = rest[: int(size, 16)]
            result: dict[str, int] = json.loads(body)
            return result

        check_all(framework, send, runs)
    finally:
        proc.stop()


# --------------------------------------------------------------------------- Hypothesis

_SEGMENT_TRICKS = st.sampled_from(["", "/", "/.", "/x/..", "/%2E", "/a/b/../.."])


@st.composite
def path_spelling(draw: st.DrawFn, path: str) -> str:
    """A spelling of ``path``: tricks between segments, percent-encoded letters."""
    out = ""
    for segment in path.strip("/").split("/"):
        out += draw(_SEGMENT_TRICKS) + "/"
        if draw(st.booleans()):
            out += "/"
        letters = [f"%{ord(c):02x}" if c.isalpha() and draw(st.booleans()) else c for c in segment]
        out += "".join(letters)
    return out + draw(st.sampled_from(["", "/", "//", "/.", "/x/.."]))


def _bypassed(send: Send, framework: str, spellings_: list[str], handler: str) -> None:
    client = uuid.uuid4().hex
    for spelling in spellings_:
        _, headers = send("GET", spelling, client)
        if headers.get("x-handler") == handler:
            # The limited handler answered: the rule must have counted it.
            assert "ratelimit-limit" in headers, (framework, spelling)
    assert runs_of(client).get(handler, 0) <= LIMIT


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar", "django"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_spellings_are_counted(framework: str, data: st.DataObject) -> None:
    from tests.apps import ratelimit_routing

    if framework == "django":
        from django.core.handlers.asgi import ASGIHandler

        with django_settings():
            send = _asgi_sender(ASGIHandler())
            _check_spellings(framework, send, data)
        return
    send = _asgi_sender(getattr(ratelimit_routing, f"{framework}_app"))
    _check_spellings(framework, send, data)


def _check_spellings(framework: str, send: Send, data: st.DataObject) -> None:
    limited = canonical(framework, "/limited")
    many = data.draw(st.lists(path_spelling(limited), min_size=1, max_size=6), "limited")
    _bypassed(send, framework, many, "limited")
    item = canonical(framework, f"/items/{data.draw(st.integers(0, 99))}")
    many = data.draw(st.lists(path_spelling(item), min_size=1, max_size=6), "items")
    _bypassed(send, framework, many, "item")
