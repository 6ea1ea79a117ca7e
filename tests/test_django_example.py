"""examples/django_project: its settings name real adapters; it runs once the middleware exist."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import asgi_kit.contrib.django as dj

from ._support.servers import LiveServerFactory

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "django_project"
MODULES = sorted(
    {
        "asgi_kit.compression",
        "asgi_kit.cors",
        "asgi_kit.tracing",
        "asgi_kit.metrics",
        "asgi_kit.ratelimit",
        "asgi_kit.sessions",
        "asgi_kit.logging",
        "asgi_kit.proxy",
    }
)


def _settings_value(name: str) -> Any:
    tree = ast.parse((EXAMPLE / "settings.py").read_text())
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node.value
    raise AssertionError(f"{name} not found in the example settings")


def test_example_settings_name_all_nine_adapters() -> None:
    middleware = ast.literal_eval(_settings_value("MIDDLEWARE"))
    prefix = "asgi_kit.contrib.django."
    names = [m.removeprefix(prefix) for m in middleware if m.startswith(prefix)]
    assert len(names) == 9
    for name in names:
        assert issubclass(getattr(dj, name), dj.DjangoASGIMiddleware)
    asgi_kit = _settings_value("ASGI_KIT")
    assert isinstance(asgi_kit, ast.Dict)
    for key in asgi_kit.keys:
        assert isinstance(key, ast.Constant)
        assert key.value in names


def _all_middleware_available() -> bool:
    for module in MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            return False
    return True


@pytest.mark.e2e
@pytest.mark.skipif(not _all_middleware_available(), reason="not every asgi_kit module exists yet")
@pytest.mark.parametrize(
    ("target", "settings_module"),
    [
        ("django_project.asgi:application", "django_project.settings"),
        ("django_project.asgi_wrapped:application", "django_project.settings_wrapped"),
    ],
    ids=["middleware-setting", "wrapped"],
)
def test_example_project_serves_the_full_stack(
    live_server: LiveServerFactory, target: str, settings_module: str
) -> None:
    """Both ways of the example serve every route the same, as a user tries them."""
    server = live_server(target, env={"DJANGO_SETTINGS_MODULE": settings_module})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        item = client.get("/items/5", headers={"x-request-id": "given-id-1"})
        assert item.status_code == 200
        assert item.json() == {"id": 5}
        assert item.headers["x-request-id"] == "given-id-1"
        assert client.get("/items/6").headers.get("x-request-id")

        index = client.get("/", headers={"accept-encoding": "gzip"})
        assert index.headers.get("content-encoding") == "gzip"
        assert index.json()["hello"] == "asgi_kit"

        preflight = client.options(
            "/",
            headers={
                "origin": "http://localhost:3000",
                "access-control-request-method": "GET",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"

        assert client.get("/counter").json() == {"count": 1}
        assert client.get("/counter").json() == {"count": 2}

        statuses = [client.get("/limited").status_code for _ in range(6)]
        assert statuses[:5] == [200] * 5
        assert statuses[5] == 429

        arrivals: list[float] = []
        body = b""
        started = time.monotonic()
        with client.stream(
            "GET", "/events?interval=0.15", headers={"accept-encoding": "gzip"}
        ) as events:
            assert events.headers["content-encoding"] == "gzip"
            for chunk in events.iter_bytes():
                arrivals.append(time.monotonic() - started)
                body += chunk
        assert body == b"".join(b"data: tick %d\n\n" % i for i in range(5))
        # Four 150 ms pauses: the first event must arrive well before the last.
        assert len(arrivals) >= 2
        assert arrivals[-1] - arrivals[0] > 0.3

        # A request is counted when the app returns, which under Django's ASGI
        # handler can be a moment after the client read the last byte.
        deadline = time.monotonic() + 5
        metrics = client.get("/metrics").text
        while 'route="/events"' not in metrics and time.monotonic() < deadline:
            time.sleep(0.05)
            metrics = client.get("/metrics").text
        assert 'route="/events"' in metrics
        assert 'route="/items/<int:pk>"' in metrics
        assert "/items/5" not in metrics


WSGI_SCRIPT = """
import django
django.setup()
from django.test import Client

c = Client()
item = c.get("/items/5")
assert item.status_code == 200 and item.json() == {"id": 5}, item
assert item.get("X-Request-ID")
index = c.get("/", headers={"Accept-Encoding": "gzip"})
assert index.get("Content-Encoding") == "gzip", index.headers
preflight = c.options(
    "/", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"}
)
assert preflight.status_code == 200
assert preflight.get("Access-Control-Allow-Origin") == "http://localhost:3000"
assert [c.get("/counter").json()["count"] for _ in range(2)] == [1, 2]
assert [c.get("/limited").status_code for _ in range(6)][5] == 429
assert 'route="/items/<int:pk>"' in c.get("/metrics").content.decode()
events = c.get("/events", {"interval": "0"})
assert events.streaming
assert b"".join(events.streaming_content).count(b"data: tick") == 5
print("ok")
"""


@pytest.mark.skipif(not _all_middleware_available(), reason="not every asgi_kit module exists yet")
def test_example_project_under_wsgi() -> None:
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "django_project.settings"
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "examples")])
    done = subprocess.run(
        [sys.executable, "-c", WSGI_SCRIPT],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
