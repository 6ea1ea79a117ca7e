"""The Django adapter's per-request cost, under Django's ASGI and WSGI handlers.

Every candidate is a complete Django application answering a small JSON view;
the "bare app" is the same project with an empty ``MIDDLEWARE``.  asgi_kit's
candidate runs a header-adding pure-ASGI middleware through
``asgi_kit.contrib.django.asgi_middleware``; the anchors do the same work as
plain Django middleware, written the two ways Django users write it (a sync
function middleware, which Django's ASGI handler runs in a thread, and an
async-capable class).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

from asgi_kit._http import MutableHeaders, asgi3

from .driver import App, Scenario

HEADER = b"x-added"


class AddHeader:
    """A pure-ASGI middleware adding one response header."""

    def __init__(self, app: Any) -> None:
        self.app = asgi3(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                message, headers = MutableHeaders.copy_of(message)
                headers.set(HEADER, b"1")
            await send(message)

        await self.app(scope, receive, send_wrapper)


def sync_function_middleware(get_response: Any) -> Any:
    """How most Django middleware is written (sync only)."""

    def middleware(request: Any) -> Any:
        response = get_response(request)
        response["X-Added"] = "1"
        return response

    return middleware


@sync_and_async_middleware
def async_capable_middleware(get_response: Any) -> Any:
    """The same work as a sync- and async-capable Django middleware."""
    if iscoroutinefunction(get_response):

        async def amiddleware(request: Any) -> Any:
            response = await get_response(request)
            response["X-Added"] = "1"
            return response

        return amiddleware

    return sync_function_middleware(get_response)


def json_view(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"ok": True})


async def async_json_view(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"ok": True})


def _configure() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="bench",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[],
            DATABASES={},
            MIDDLEWARE=[],
            LOGGING_CONFIG=None,
        )
        django.setup()


def _urls() -> list[Any]:
    from django.urls import path

    return [path("", async_json_view), path("sync", json_view)]


def __getattr__(name: str) -> Any:
    # ROOT_URLCONF is this module; build the patterns only once Django is set up.
    if name == "urlpatterns":
        return _urls()
    raise AttributeError(name)


ADAPTER = f"{__name__}.Adapted"
MIDDLEWARE = {
    "bare": [],
    "asgi_kit": [ADAPTER],
    "sync function middleware": [f"{__name__}.sync_function_middleware"],
    "async-capable middleware": [f"{__name__}.async_capable_middleware"],
}


def _init_adapter() -> None:
    from asgi_kit.contrib.django import asgi_middleware

    globals()["Adapted"] = asgi_middleware(AddHeader)


def _asgi(middleware: list[str]) -> App:
    from django.core.handlers.asgi import ASGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=middleware):
        handler = ASGIHandler()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # Django listens for a disconnect while the view runs: keep the
        # connection open (the driver would report one at once).
        first = await receive()
        given = False

        async def held_receive() -> Any:
            nonlocal given
            if not given:
                given = True
                return first
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        await handler(scope, held_receive, send)

    return app


def scenarios() -> list[Scenario]:
    _configure()
    _init_adapter()
    return [
        Scenario(
            "Django ASGI handler: add a header",
            bare=_asgi(MIDDLEWARE["bare"]),
            ours=_asgi(MIDDLEWARE["asgi_kit"]),
            anchors={
                label: _asgi(mw)
                for label, mw in MIDDLEWARE.items()
                if label not in ("bare", "asgi_kit")
            },
        )
    ]


def _median_overhead(call: Any, base: Any, requests: int, rounds: int) -> float:
    values = []
    for round_no in range(rounds + 1):
        bare = base(requests)
        elapsed = call(requests)
        if round_no:
            values.append(elapsed - bare)
    return statistics.median(values)


def report(requests: int = 2000, rounds: int = 5) -> str:
    """The adapter alone: one middleware called with a request, both modes.

    Calls the Django middleware instance directly with a prebuilt request and
    a ``get_response`` returning a small JSON response, so Django's own
    per-request work (signals, thread hops of its handlers) does not drown
    the figure.  Overhead is over calling ``get_response`` directly.
    """
    from django.http import JsonResponse
    from django.test import AsyncRequestFactory, RequestFactory

    _configure()
    _init_adapter()
    adapted = globals()["Adapted"]

    async def aget_response(request: Any) -> Any:
        return JsonResponse({"ok": True})

    def sget_response(request: Any) -> Any:
        return JsonResponse({"ok": True})

    arf, srf = AsyncRequestFactory(), RequestFactory()

    def async_timer(handler: Any) -> Any:
        def timed(n: int) -> float:
            async def loop() -> float:
                start = time.perf_counter_ns()
                for _ in range(n):
                    await handler(arf.get("/"))
                return (time.perf_counter_ns() - start) / n / 1000.0

            return asyncio.run(loop())

        return timed

    def sync_timer(handler: Any) -> Any:
        def timed(n: int) -> float:
            start = time.perf_counter_ns()
            for _ in range(n):
                handler(srf.get("/"))
            return (time.perf_counter_ns() - start) / n / 1000.0

        return timed

    rows = []
    for mode, get_response, timer in (
        ("ASGI (async get_response)", aget_response, async_timer),
        ("WSGI (sync get_response)", sget_response, sync_timer),
    ):
        base = timer(get_response)
        ours = _median_overhead(timer(adapted(get_response)), base, requests, rounds)
        native = _median_overhead(
            timer(async_capable_middleware(get_response)), base, requests, rounds
        )
        rows.append(f"| {mode} | {ours:.1f} | {native:.1f} |")
    return "\n".join(
        [
            "The adapter alone (µs per call over get_response; same header added):",
            "",
            "| mode | asgi_kit adapter µs | native async-capable Django middleware µs |",
            "|---|---:|---:|",
            *rows,
        ]
    )
