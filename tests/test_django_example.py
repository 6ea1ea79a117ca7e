"""examples/django_project: its settings name real adapters; it runs once the middleware exist."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
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
def test_example_project_serves_the_full_stack(live_server: LiveServerFactory) -> None:
    server = live_server(
        "django_project.asgi:application",
        env={"DJANGO_SETTINGS_MODULE": "django_project.settings"},
    )
    with httpx.Client(base_url=server.url, timeout=10) as client:
        item = client.get("/items/5")
        assert item.status_code == 200
        assert item.json() == {"id": 5}
        assert item.headers.get("x-request-id")

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

        metrics = client.get("/metrics").text
        assert 'route="/items/<int:pk>"' in metrics


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
events = c.get("/events")
assert events.streaming
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
