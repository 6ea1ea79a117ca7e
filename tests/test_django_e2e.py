"""The Django adapters over real sockets.

``get_asgi_application()`` (with the test project's MIDDLEWARE adapters, and
wrapped directly with ASGI middleware) under Uvicorn, Hypercorn, Daphne and Granian;
Django's WSGI application under the stdlib's WSGI server.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from tests.apps.django_project import configure

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e

STREAM = b"".join(b"CHUNK %d\n" % i for i in range(5))
ASTREAM = b"".join(b"ACHUNK %d\n" % i for i in range(5))


def _check_stream(
    client: httpx.Client, path: str, headers: dict[str, str], expected: bytes = STREAM
) -> None:
    started = time.monotonic()
    arrivals: list[float] = []
    body = b""
    with client.stream("GET", path, headers=headers) as stream:
        assert stream.status_code == 200
        for chunk in stream.iter_raw():
            arrivals.append(time.monotonic() - started)
            body += chunk
    assert body == expected
    # The view sleeps 50 ms between its five chunks: the first bytes must
    # arrive well before the last, i.e. no layer buffered the stream.
    assert len(arrivals) >= 2
    assert arrivals[-1] - arrivals[0] > 0.1


def _check_app(base_url: str, *, wrapped: bool) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        response = client.get("/items/5")
        assert response.status_code == 200
        assert response.json() == {"pk": 5}
        assert response.headers["x-added"] == "by-asgi"
        assert response.headers["x-route"] == "/items/<int:pk>"
        assert response.headers["x-content-type-name"] == "Content-Type"
        if wrapped:
            assert response.headers["x-wrapped"] == "outside"

        response = client.get("/json")
        cookies = response.headers.get_list("set-cookie")
        assert "mw=one; Path=/; HttpOnly; SameSite=Lax" in cookies
        assert "mw2=two; Path=/sub; Partitioned; Secure" in cookies
        assert any(c.startswith("view_cookie=v1;") for c in cookies)
        assert response.json()["session"] == {"user": "alice"}

        limited = client.get("/limited")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "7"
        assert limited.text == "slow down"

        _check_stream(client, "/stream?delay=0.05", {"x-upper": "1"})
        _check_stream(client, "/async-stream?delay=0.05", {"x-upper": "1"}, ASTREAM)
        if wrapped:
            _check_stream(client, "/stream?delay=0.05", {"x-upper-outside": "1"})

        body = b"hello django " * 2000
        echo = client.post("/echo", content=body, headers={"content-type": "text/plain"})
        assert echo.content == body
        assert echo.headers["x-body-length"] == str(len(body))

        # The request-decompressing middleware's output is the body the view reads.
        compressed = client.post(
            "/echo",
            content=gzip.compress(body),
            headers={"content-type": "text/plain", "content-encoding": "gzip"},
        )
        assert compressed.content == body


def test_django_asgi_under_real_servers(live_server: LiveServerFactory) -> None:
    server = live_server("tests.apps.django_asgi:wrapped")
    _check_app(server.url, wrapped=True)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def wsgi_url() -> Iterator[str]:
    configure()
    from django.core.wsgi import get_wsgi_application

    server = make_server(
        "127.0.0.1", 0, get_wsgi_application(), server_class=WSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_django_wsgi_over_a_real_socket(wsgi_url: str) -> None:
    _check_app(wsgi_url, wrapped=False)
