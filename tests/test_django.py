"""asgi_kit.contrib.django: ASGI middleware in Django's MIDDLEWARE, under WSGI and ASGI.

The adapters are proved with small ASGI middleware defined in
``tests/apps/django_project/mw.py`` (a header adder, a middleware answering
requests itself, a chunk-by-chunk body transformer, a route reader, a
cookie setter, a request-body decompressor, a context binder), driven by
Django's test ``Client`` (the WSGI handler) and ``AsyncClient`` (the ASGI
handler).  ``tests/test_django_e2e.py`` does the same over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.test import AsyncClient, Client, override_settings

import asgi_kit.contrib.django as dj
from tests._support.asgi import call_http
from tests._support.django import (
    KINDS,
    P,
    _reset,  # noqa: F401 (autouse: configures Django)
    fetch,
)
from tests.apps.django_project import adapters, mw, views

NINE = {
    "CompressionMiddleware": "asgi_kit.compression",
    "CORSMiddleware": "asgi_kit.cors",
    "TracingMiddleware": "asgi_kit.tracing",
    "MetricsMiddleware": "asgi_kit.metrics",
    "RateLimitMiddleware": "asgi_kit.ratelimit",
    "SessionMiddleware": "asgi_kit.sessions",
    "RequestIDMiddleware": "asgi_kit.logging",
    "AccessLogMiddleware": "asgi_kit.logging",
    "ProxyHeadersMiddleware": "asgi_kit.proxy",
    "RequestLimitsMiddleware": "asgi_kit.limits",
    "ConditionalGetMiddleware": "asgi_kit.conditional",
}
# --------------------------------------------------------------------------- the nine names


def test_nine_adapters_exist_with_design_modules() -> None:
    for name, module in NINE.items():
        cls = getattr(dj, name)
        assert issubclass(cls, dj.DjangoASGIMiddleware)
        assert cls.__name__ == name
        assert cls.__module__ == "asgi_kit.contrib.django"
        assert cls.asgi_middleware == f"{module}.{name}"
        assert cls.settings_key == name
        assert cls.sync_capable and cls.async_capable
        assert name in dj.__all__


def test_import_needs_no_middleware_module() -> None:
    blocked = sorted(set(NINE.values()))
    code = (
        "import importlib.util, sys, types\n"
        # The package's __init__ re-exports every middleware: load the package
        # without it, so only asgi_kit.contrib.django's own imports count.
        "spec = importlib.util.find_spec('asgi_kit')\n"
        "pkg = types.ModuleType('asgi_kit')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['asgi_kit'] = pkg\n"
        f"blocked = {blocked!r}\n"
        "for name in blocked: sys.modules[name] = None\n"
        "import asgi_kit.contrib.django as dj\n"
        "print(dj.SessionMiddleware.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SessionMiddleware"


def test_missing_middleware_module_is_improperly_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "asgi_kit.sessions", None)
    with (
        override_settings(MIDDLEWARE=["asgi_kit.contrib.django.SessionMiddleware"]),
        pytest.raises(ImproperlyConfigured, match=r"asgi_kit\.sessions\.SessionMiddleware"),
    ):
        Client().get("/json")


@pytest.mark.parametrize("kind", KINDS)
async def test_builtin_name_imports_its_module_and_reads_its_setting(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = types.ModuleType("asgi_kit.cors")
    fake.CORSMiddleware = mw.AddHeaderMiddleware  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "asgi_kit.cors", fake)
    with override_settings(
        MIDDLEWARE=["asgi_kit.contrib.django.CORSMiddleware"],
        ASGI_KIT={"CORSMiddleware": {"name": "x-from-settings", "value": "cors"}},
    ):
        result = await fetch(kind, "GET", "/json")
    assert result.status == 200
    assert result["X-From-Settings"] == "cors"


# --------------------------------------------------------------------------- configuration


def _get_response(request: Any) -> Any:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("asgi_kit", "adapter", "message"),
    [
        (None, "Required", r"Required.*'secret_key' is required"),
        ({}, "Required", r"'secret_key' is required"),
        (
            {"Required": {"secret": "x"}},
            "Required",
            r"ASGI_KIT\['Required'\].*unknown option 'secret' \(did you mean 'secret_key'\?\)",
        ),
        ({"Required": {"secret_key": "s", "max_age": -1}}, "Required", r"Required.*max_age"),
        ({"Required": {"secret_key": "s", "app": 1}}, "Required", r"'app' is the wrapped"),
        (["Required"], "Required", r"ASGI_KIT must be a dict"),
        ({"Required": "s"}, "Required", r"ASGI_KIT\['Required'\] must be a dict of options"),
        ({"Required": {1: "s"}}, "Required", r"option names must be strings"),
        ({"AddHeaderMiddleware": {"value": 3}}, "AddHeader", r"AddHeaderMiddleware.*value"),
        ({"AddHeaderMiddleware": {"name": "bad name"}}, "AddHeader", r"AddHeaderMiddleware.*name"),
        ({}, "Missing", r"cannot import the ASGI middleware 'tests\.apps"),
    ],
)
def test_configuration_errors_name_class_and_option(
    asgi_kit: Any, adapter: str, message: str
) -> None:
    cls = getattr(adapters, adapter)
    with override_settings(ASGI_KIT=asgi_kit), pytest.raises(ImproperlyConfigured, match=message):
        cls(_get_response)


def test_settings_override_factory_defaults() -> None:
    with override_settings(ASGI_KIT={"Required": {"secret_key": "s3cret"}}):
        instance = adapters.Required(_get_response)
    assert instance.asgi_app.secret_key == "s3cret"  # type: ignore[attr-defined]
    with override_settings(ASGI_KIT={"CookieSetterMiddleware": {"name": "other"}}):
        assert adapters.CookieSetter(_get_response).asgi_app.name == b"other"  # type: ignore[attr-defined]
    assert adapters.CookieSetter(_get_response).asgi_app.name == b"mw"  # type: ignore[attr-defined]


def test_configuration_error_surfaces_at_django_start_up() -> None:
    with (
        override_settings(MIDDLEWARE=[P + "Required"], ASGI_KIT={}),
        pytest.raises(ImproperlyConfigured, match="secret_key"),
    ):
        Client().get("/json")


def test_base_class_without_middleware_is_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="no ASGI middleware to run"):
        dj.DjangoASGIMiddleware(_get_response)


def test_factory_rejects_bad_targets() -> None:
    with pytest.raises(ValueError, match="dotted"):
        dj.asgi_middleware("NoDots")
    with pytest.raises(TypeError, match="dotted path or a callable"):
        dj.asgi_middleware(3)  # type: ignore[arg-type]
    cls = dj.asgi_middleware(mw.AddHeaderMiddleware, value="v")
    assert cls.__name__ == "AddHeaderMiddleware"
    assert cls.__module__ == __name__
    assert cls.default_options == {"value": "v"}


async def test_sync_and_async_capable() -> None:
    async def async_get_response(request: Any) -> Any:
        raise AssertionError

    sync_instance = adapters.AddHeader(_get_response)
    async_instance = adapters.AddHeader(async_get_response)
    assert not iscoroutinefunction(sync_instance)
    assert iscoroutinefunction(async_instance)


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("kind", KINDS)
async def test_header_added_and_mixed_case_names_reach_the_middleware(kind: str) -> None:
    result = await fetch(kind, "GET", "/json")
    assert result.status == 200
    assert result["X-Added"] == "by-asgi"
    # Django writes "Content-Type"; the ASGI middleware saw it as written.
    assert result["X-Content-Type-Name"] == "Content-Type"
    assert result["Content-Type"] == "application/json"
    # The view's own response object is kept (patched), not rebuilt.
    assert isinstance(result.response, JsonResponse)
    assert result.json()["path"] == "/json"
    assert views.CALLS == {"json": 1}


@pytest.mark.parametrize("kind", KINDS)
async def test_middleware_answers_itself_and_the_view_never_runs(kind: str) -> None:
    limited = await fetch(kind, "GET", "/limited")
    assert limited.status == 429
    assert limited["Retry-After"] == "7"
    assert limited.body == b"slow down"
    assert limited["X-Added"] == "by-asgi"  # outer adapters still see the answer

    preflight = await fetch(
        kind,
        "OPTIONS",
        "/json",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example"
    assert preflight["Vary"] == "Origin"
    assert preflight.body == b""
    # No Content-Type was sent by the middleware, so Django adds none.
    assert preflight.get("Content-Type") is None
    assert views.CALLS == {}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/items/7", "/items/<int:pk>"),
        ("/api/items/3", "/api/items/<int:pk>"),
        ("/api/legacy/2024/", "/api/legacy/(?P<year>[0-9]{4})/"),
        ("/json", "/json"),
        ("/no-such-page", "-"),
        ("/boom", "/boom"),
    ],
)
async def test_route_template_from_resolver(kind: str, path: str, route: str) -> None:
    result = await fetch(kind, "GET", path)
    assert result["X-Route"] == route
    # A view exception is Django's 500 before the middleware sees the response.
    assert result.status == {"-": 404, "/boom": 500}.get(route, 200)
    assert result["X-Added"] == "by-asgi"


@pytest.mark.parametrize("kind", KINDS)
async def test_middleware_exception_becomes_500(kind: str) -> None:
    with override_settings(MIDDLEWARE=[P + "Failing"]):
        result = await fetch(kind, "GET", "/json")
        assert result.status == 500
        with pytest.raises(RuntimeError, match="middleware exploded"):
            if kind == "wsgi":
                await asyncio.to_thread(Client().get, "/json")
            else:
                await AsyncClient().get("/json")
    assert views.CALLS == {}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["/json", "/stream"])
async def test_exception_after_a_complete_response_is_logged(
    kind: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(MIDDLEWARE=[P + "RaiseAfter"]):
        result = await fetch(kind, "GET", path)
    assert result.status == 200
    assert result.body.startswith(b"{" if path == "/json" else b"chunk 0")
    assert any(
        r.name == "asgi_kit.contrib.django" and "after its response" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_asgi2_middleware(kind: str) -> None:
    with override_settings(MIDDLEWARE=[P + "Legacy"]):
        result = await fetch(kind, "GET", "/json")
    assert result.status == 200
    assert result["X-Asgi2"] == "yes"


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("path", "word", "key"), [("/stream", b"CHUNK", "sync")])
async def test_stream_transformed_chunk_by_chunk_and_never_buffered(
    kind: str, path: str, word: bytes, key: str
) -> None:
    await _check_stream(kind, path, word, key)


@pytest.mark.parametrize("kind", KINDS)
async def test_async_iterator_stream(kind: str) -> None:
    await _check_stream(kind, "/async-stream", b"ACHUNK", "async")


async def _check_stream(kind: str, path: str, word: bytes, key: str) -> None:
    with override_settings(MIDDLEWARE=[P + "AddHeader", P + "UpperCaseBody"]):
        await _check_stream_inner(kind, path, word, key)


async def _check_stream_inner(kind: str, path: str, word: bytes, key: str) -> None:
    headers = {"X-Upper": "1"}
    if kind == "wsgi":

        def run() -> tuple[Any, list[bytes], int]:
            response = Client().get(path, headers=headers)
            assert response.streaming
            iterator = iter(response.streaming_content)
            first = next(iterator)
            produced_after_first = views.PRODUCED[key]
            rest = list(iterator)
            response.close()
            return response, [first, *rest], produced_after_first

        response, chunks, produced = await asyncio.to_thread(run)
    else:
        response = await AsyncClient().get(path, headers=headers)
        assert response.streaming
        iterator = aiter(response.streaming_content)
        first = await anext(iterator)
        produced = views.PRODUCED[key]
        chunks = [first] + [chunk async for chunk in iterator]
    assert response["X-Transformed"] == "upper"
    assert response["X-Added"] == "by-asgi"
    assert b"".join(chunks) == b"".join(word + b" %d\n" % i for i in range(5))
    # Chunk by chunk: the consumer had the first chunk long before the view's
    # iterator was exhausted (at most one chunk of look-ahead per layer).
    assert produced <= 3
    assert len([c for c in chunks if c]) == 5


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_untouched_by_middleware_stays_streaming(kind: str) -> None:
    result = await fetch(kind, "GET", "/stream")
    assert result.response.streaming
    assert result.body == b"".join(b"chunk %d\n" % i for i in range(5))
    assert result.get("X-Transformed") is None


# --------------------------------------------------------------------------- request side


@pytest.mark.parametrize("kind", KINDS)
async def test_context_scope_state_and_session_reach_the_view(kind: str) -> None:
    for path in ("/info", "/async-json"):
        result = await fetch(kind, "GET", path)
        info = result.json()
        # A context variable and structlog's contextvars bound by the ASGI
        # middleware are visible in sync and async views.
        assert info["tag"] == f"tag-{path}"
        assert info["structlog"] == {"request_id": "rid-1"}
        assert info["state"]["request_id"] == "rid-1"
        # asgi_kit's session lives in the ASGI scope, not in request.session.
        assert info["session"] == {"user": "alice"}
        if kind == "asgi":
            assert info["has_request_scope"]
            assert info["scope_session"] == {"user": "alice"}
        else:
            assert not info["has_request_scope"]
        assert info["remote_addr"] == "127.0.0.1"
        assert info["scheme"] == "http"


@pytest.mark.parametrize("kind", KINDS)
async def test_client_and_scheme_changes_reach_the_request(kind: str) -> None:
    result = await fetch(kind, "GET", "/info", headers={"X-Pretend-Proxy": "1"})
    info = result.json()
    assert info["remote_addr"] == "203.0.113.9"
    assert info["scheme"] == "https"


# --------------------------------------------------------------------------- ASGI directly


async def test_wrapping_get_asgi_application_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server module sets DJANGO_SETTINGS_MODULE; keep that out of other tests.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.apps.django_project.settings")
    from tests.apps.django_asgi import wrapped

    result = await call_http(wrapped, "GET", "/json")
    assert result.status == 200
    assert result.header("x-wrapped") == "outside"
    assert result.header("x-added") == "by-asgi"  # the MIDDLEWARE adapters ran too
    # Django's ASGI handler itself writes mixed-case names.
    assert result.header("x-content-type-name") == "Content-Type"

    stream = await call_http(wrapped, "GET", "/stream", headers={"x-upper-outside": "1"})
    assert stream.status == 200
    non_empty = [c for c in stream.chunks if c]
    assert len(non_empty) == 5  # streamed through every layer, never joined
    assert stream.body == b"".join(b"CHUNK %d\n" % i for i in range(5))

    limited = await call_http(wrapped, "GET", "/limited")
    assert limited.status == 429
    assert views.CALLS.get("limited") is None


async def test_route_middleware_publishes_route_for_wrapping_asgi_middleware() -> None:
    from django.core.asgi import get_asgi_application

    with override_settings(MIDDLEWARE=["asgi_kit.contrib.django.RouteMiddleware"]):
        app = mw.RouteHeaderMiddleware(get_asgi_application())
        result = await call_http(app, "GET", "/api/items/9")
        assert result.status == 200
        assert result.header("x-route") == "/api/items/<int:pk>"
        missing = await call_http(app, "GET", "/nowhere")
        assert missing.header("x-route") == "-"
        sync_result = await fetch("wsgi", "GET", "/items/1")  # no ASGI scope: a no-op
        assert sync_result.status == 200


async def test_route_middleware_gives_views_request_asgi_scope_when_wrapping() -> None:
    """A view written for the adapters (request.asgi_scope["session"]) works wrapped too."""
    from django.core.asgi import get_asgi_application

    async def info(middleware: list[str]) -> Any:
        with override_settings(MIDDLEWARE=middleware):
            # Django builds its middleware chain when the application is made.
            app = mw.ContextBinderMiddleware(get_asgi_application())
            result = await call_http(app, "GET", "/info")
        assert result.status == 200
        return json.loads(result.body)

    wrapped = await info(["asgi_kit.contrib.django.RouteMiddleware"])
    assert wrapped["session"] == {"user": "alice"}
    assert wrapped["state"]["request_id"] == "rid-1"
    assert (await info([]))["session"] is None  # nothing sets request.asgi_scope
    # An adapter's own scope is kept: it is the one its middleware passed on.
    inner = await info([P + "AddHeader", "asgi_kit.contrib.django.RouteMiddleware"])
    assert inner["session"] == {"user": "alice"}


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_requests_do_not_mix(kind: str) -> None:
    paths = [f"/info?n={i}" for i in range(12)]
    results = await asyncio.gather(*(fetch(kind, "GET", p) for p in paths))
    for i, result in enumerate(results):
        info = result.json()
        assert result.status == 200
        assert info["n"] == str(i)
        assert info["tag"] == "tag-/info"
        assert info["structlog"] == {"request_id": "rid-1"}
    assert len({r.thread for r in results}) >= (2 if kind == "wsgi" else 1)
    # No reference cycle through the scope once a complete response is built.
    for result in results:
        scope = result.response.wsgi_request.asgi_scope if kind == "wsgi" else None
        if scope is not None:
            assert "asgi_kit.django.exchange" not in scope


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("CorsMiddleware", r" \(did you mean 'CORSMiddleware'\?\)"),
        ("RateLimiter", r" \(did you mean 'RateLimitMiddleware'\?\)"),
        ("Nothing like it", ""),
    ],
)
def test_a_misspelt_middleware_name_fails_at_start_up(key: str, hint: str) -> None:
    with (
        override_settings(
            MIDDLEWARE=["asgi_kit.contrib.django.RequestIDMiddleware"],
            ASGI_KIT={key: {"allow_origins": ["https://app.example"]}},
        ),
        pytest.raises(
            ImproperlyConfigured,
            match=rf"ASGI_KIT: unknown middleware name {key!r}{hint}; known names: .*CORSM",
        ),
    ):
        Client().get("/json")


def test_every_adapter_name_is_a_known_key_including_new_ones() -> None:
    # Adapters defined later (a project's own, another asgi_kit module's) count
    # without being registered anywhere.
    fresh = dj.asgi_middleware(mw.AddHeaderMiddleware)

    class Custom(fresh):  # type: ignore[valid-type,misc]
        settings_key = "CustomHeaders"

    configured = {name: {} for name in NINE}
    configured["CustomHeaders"] = {"name": "x-custom", "value": "1"}
    with override_settings(ASGI_KIT=configured):
        assert Custom(_get_response).asgi_app.name == b"x-custom"  # type: ignore[attr-defined]


def test_a_key_read_by_an_adapter_listed_in_middleware_is_known_before_it_is_loaded(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "late_adapters.py"
    module.write_text(
        "from asgi_kit.contrib.django import asgi_middleware\n"
        "from tests.apps.django_project.mw import AddHeaderMiddleware\n"
        "class Late(asgi_middleware(AddHeaderMiddleware)):\n"
        "    settings_key = 'LateHeaders'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "late_adapters", raising=False)
    with override_settings(
        MIDDLEWARE=["asgi_kit.contrib.django.RequestIDMiddleware", "late_adapters.Late"],
        ASGI_KIT={"LateHeaders": {"name": "x-late", "value": "1"}},
    ):
        assert "LateHeaders" in dj._known_settings_keys()
