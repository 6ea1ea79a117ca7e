"""RequestLimitsMiddleware in-process: body size, timeout, concurrency, metrics, logging."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import structlog
import structlog.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge

from asgi_kit import RequestLimitsMiddleware
from asgi_kit.limits import MALFORMED, parse_content_length
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import call_http, http_scope, websocket, websocket_scope

# Apps reuse one module-level start message and header list, as real apps do.
HEADERS = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"2")]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
OK = {"type": "http.response.body", "body": b"ok", "more_body": False}
CHUNKED = [("Transfer-Encoding", "chunked")]


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send(START)
    await send(OK)


class BodyReader:
    """An app that reads the whole body, records what it saw, then answers."""

    def __init__(self) -> None:
        self.seen = 0
        self.last: Message | None = None
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        while True:
            message = await receive()
            self.last = message
            if message["type"] != "http.request":
                break
            self.seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send(START)
        await send(OK)


def registry() -> CollectorRegistry:
    return CollectorRegistry()


def limits(app: Any, **options: Any) -> RequestLimitsMiddleware:
    options.setdefault("registry", registry())
    return RequestLimitsMiddleware(app, **options)


def detail(response: Any) -> str:
    return str(json.loads(response.body)["detail"])


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"max_body_size": "1"}, TypeError, "max_body_size"),
        ({"max_body_size": True}, TypeError, "max_body_size"),
        ({"max_body_size": -1}, ValueError, "max_body_size"),
        ({"timeout": "5"}, TypeError, "timeout"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": float("inf")}, ValueError, "timeout"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"max_concurrency": 1.5}, TypeError, "max_concurrency"),
        ({"max_concurrency": 2, "max_queue": -1}, ValueError, "max_queue"),
        ({"max_concurrency": 2, "max_queue": None}, TypeError, "max_queue"),
        ({"max_queue": 5}, ValueError, "max_concurrency"),
        ({"queue_timeout": 1}, ValueError, "max_concurrency"),
        ({"max_concurrency": 2, "queue_timeout": -1}, ValueError, "queue_timeout"),
        ({"exclude_paths": "/health"}, TypeError, "exclude_paths"),
        ({"max_body_size_paths": ["/upload"]}, TypeError, "max_body_size_paths"),
        ({"max_body_size_paths": {"upload": 5}}, ValueError, "max_body_size_paths"),
        ({"max_body_size_paths": {"/upload": -5}}, ValueError, "max_body_size_paths"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout"),
        ({"retry_after": -1}, ValueError, "retry_after"),
        ({"limit_websockets": 1}, TypeError, "limit_websockets"),
        ({"registry": "default"}, TypeError, "registry"),
    ],
)
def test_bad_options_name_the_option(
    options: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        RequestLimitsMiddleware(ok_app, **options)


def test_non_callable_app_is_refused() -> None:
    with pytest.raises(TypeError, match="app"):
        RequestLimitsMiddleware("not an app")  # type: ignore[arg-type]


def test_positional_order_matches_the_design() -> None:
    mw = RequestLimitsMiddleware(ok_app, 10, 2.0, 3, 4, 1.0, ["/health"], registry=None)
    assert (mw.max_body_size, mw.timeout, mw.max_concurrency, mw.max_queue) == (10, 2.0, 3, 4)
    assert mw.queue_timeout == 1.0
    assert mw.exclude_paths == ("/health",)


# --------------------------------------------------------------------------- Content-Length


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([b"0"], 0),
        ([b"42"], 42),
        ([b" 42 "], 42),
        ([b"42", b"42"], 42),
        ([b"42, 42"], 42),
        ([b"42", b"43"], MALFORMED),
        ([b"42, 43"], MALFORMED),
        ([b""], MALFORMED),
        ([b"-1"], MALFORMED),
        ([b"+5"], MALFORMED),
        ([b"0x10"], MALFORMED),
        ([b"1e3"], MALFORMED),
        ([b"4 2"], MALFORMED),
        (["٣".encode()], MALFORMED),
        ([b"42,"], MALFORMED),
        ([b"9" * 5000], 10**18),
    ],
)
def test_parse_content_length(values: list[bytes], expected: int | None) -> None:
    assert parse_content_length(values) == expected


@given(st.lists(st.binary(max_size=30), max_size=4))
def test_parse_content_length_never_raises(values: list[bytes]) -> None:
    result = parse_content_length(values)
    assert result is None or result == MALFORMED or result >= 0
    if result is None:
        assert values == []


@given(st.integers(min_value=0, max_value=10**17), st.integers(min_value=1, max_value=3))
def test_parse_content_length_reads_repeated_lengths(n: int, copies: int) -> None:
    assert parse_content_length([str(n).encode()] * copies) == n


async def test_declared_length_over_the_limit_is_refused_before_the_app_runs() -> None:
    app = BodyReader()
    mw = limits(app, max_body_size=10)
    response = await call_http(mw, "POST", "/", headers=[("Content-Length", "11")], body=b"x" * 11)
    assert response.status == 413
    assert response.header("content-type") == "application/json"
    assert response.header("connection") == "close"
    assert detail(response) == "Request body too large"
    assert int(response.header("content-length") or 0) == len(response.body)
    assert app.calls == 0


async def test_declared_length_at_the_limit_passes() -> None:
    app = BodyReader()
    mw = limits(app, max_body_size=10)
    response = await call_http(mw, "POST", "/", headers={"content-length": "10"}, body=b"x" * 10)
    assert response.status == 200
    assert app.seen == 10


@pytest.mark.parametrize(
    "headers",
    [
        [("content-length", "abc")],
        [("content-length", "5"), ("Content-Length", "6")],
        [("content-length", "5, 6")],
        [("content-length", "-5")],
    ],
)
async def test_malformed_or_conflicting_length_is_400(headers: list[tuple[str, str]]) -> None:
    app = BodyReader()
    response = await call_http(limits(app, max_body_size=100), "POST", "/", headers=headers)
    assert response.status == 400
    assert "Content-Length" in detail(response)
    assert app.calls == 0


async def test_no_body_limit_leaves_content_length_to_the_server() -> None:
    app = BodyReader()
    response = await call_http(limits(app), "POST", "/", headers={"content-length": "abc"})
    assert response.status == 200


async def test_streamed_body_crossing_the_limit_gets_413_and_the_app_a_disconnect() -> None:
    app = BodyReader()
    mw = limits(app, max_body_size=25)
    chunks = [b"x" * 10] * 6
    sent_before_413: list[int] = []

    def on_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            sent_before_413.append(app.seen)

    response = await call_http(mw, "POST", "/upload", headers=CHUNKED, body=chunks, on_send=on_send)
    assert response.status == 413
    assert detail(response) == "Request body too large"
    # The client got its answer while the app was still reading.
    assert sent_before_413 == [20]
    assert app.seen == 20  # the crossing chunk is not handed over
    assert app.last == {"type": "http.disconnect"}
    # The app's own response, after the refusal, never reached the client.
    assert [m["type"] for m in response.messages] == ["http.response.start", "http.response.body"]


async def test_streamed_body_crossing_after_the_response_started_disconnects() -> None:
    seen: list[Message] = []

    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b"ok"})

    response = await call_http(
        limits(echo, max_body_size=15), "POST", "/", headers=CHUNKED, body=[b"x" * 10] * 3
    )
    assert response.status == 200
    assert response.body == b"ok"
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]


@pytest.mark.parametrize(
    ("http_version", "headers", "status"),
    [
        ("2", [], 413),  # HTTP/2 streams a body without Content-Length
        ("3", [], 413),
        ("1.1", CHUNKED, 413),
        ("1.1", [("transfer-encoding", "gzip, chunked")], 413),
        # HTTP/1.1 without Content-Length or Transfer-Encoding has no body: the
        # server never delivers one, so it is not counted.
        ("1.1", [], 200),
    ],
)
async def test_which_bodies_are_counted(
    http_version: str, headers: list[tuple[str, str]], status: int
) -> None:
    app = BodyReader()
    mw = limits(app, max_body_size=5)
    response = await call_http(
        mw, "POST", "/", headers=headers, body=[b"x" * 4] * 3, http_version=http_version
    )
    assert response.status == status


async def test_streamed_body_under_the_limit_is_untouched() -> None:
    app = BodyReader()
    response = await call_http(limits(app, max_body_size=30), "POST", "/", body=[b"x" * 10] * 3)
    assert response.status == 200
    assert app.seen == 30


async def test_per_path_overrides_first_match_wins() -> None:
    app = BodyReader()
    mw = limits(
        app,
        max_body_size=10,
        max_body_size_paths={"/upload/avatar": 50, "/upload/*": 1000, "/stream": None},
    )
    assert mw.body_limit("/upload/avatar") == 50
    assert mw.body_limit("/upload/video") == 1000
    assert mw.body_limit("/stream") is None
    assert mw.body_limit("/api") == 10
    big = {"content-length": "500"}
    assert (await call_http(mw, "POST", "/upload/video", headers=big)).status == 200
    assert (await call_http(mw, "POST", "/upload/avatar", headers=big)).status == 413
    assert (await call_http(mw, "POST", "/api", headers=big)).status == 413
    assert (await call_http(mw, "POST", "/stream", body=[b"x" * 100] * 3)).status == 200


# --------------------------------------------------------------------------- timeout


async def test_slow_app_is_cancelled_cleanly_and_answered_504() -> None:
    events: list[str] = []

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        events.append("start")
        try:
            await asyncio.sleep(30)
        finally:
            events.append("cleanup")
        await send(START)  # pragma: no cover

    before = asyncio.all_tasks()
    response = await call_http(limits(slow, timeout=0.05), "GET", "/slow")
    assert response.status == 504
    assert detail(response) == "The application did not answer in time"
    assert events == ["start", "cleanup"]
    assert asyncio.all_tasks() == before
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # our cancellation was withdrawn


async def test_a_started_response_is_not_cut_by_timeout() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        for _ in range(3):
            await asyncio.sleep(0.04)
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(limits(streaming, timeout=0.05), "GET", "/")
    assert response.status == 200
    assert response.body == b"xxx"


async def test_idle_timeout_cuts_a_stalled_stream() -> None:
    cleaned: list[bool] = []

    async def stalls(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(START)
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(0.02)
            await send({"type": "http.response.body", "body": b"y", "more_body": True})
            await asyncio.sleep(30)
        finally:
            cleaned.append(True)

    response = await call_http(limits(stalls, idle_timeout=0.1), "GET", "/")
    assert response.status == 200
    assert response.body == b"xy"
    assert not any(m.get("more_body") is False for m in response.messages[1:])
    assert cleaned == [True]


async def test_app_that_swallows_the_cancellation_still_gets_504() -> None:
    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return

    response = await call_http(limits(stubborn, timeout=0.05), "GET", "/")
    assert response.status == 504


async def test_the_apps_own_timeout_error_propagates() -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        raise TimeoutError("upstream")

    with pytest.raises(TimeoutError, match="upstream"):
        await call_http(limits(fails, timeout=5), "GET", "/")


async def test_an_outer_cancellation_is_not_swallowed() -> None:
    started = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await asyncio.sleep(30)

    task = asyncio.ensure_future(call_http(limits(slow, timeout=10), "GET", "/"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_app_sending_from_its_finally_after_the_deadline() -> None:
    async def late(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await send(START)
            await send(OK)

    response = await call_http(limits(late, timeout=0.05), "GET", "/")
    assert response.status == 200  # the app answered after all: its answer stands
    assert response.body == b"ok"


# --------------------------------------------------------------------------- concurrency


class Gate:
    """An app whose requests all wait until released, counting who runs at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.peak = 0
        self.order: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.order.append(scope["path"])
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        await send(START)
        await send(OK)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrency_limit_queue_and_shedding() -> None:
    gate = Gate()
    reg = registry()
    mw = limits(gate, max_concurrency=2, max_queue=2, retry_after=7, registry=reg)
    tasks = [asyncio.ensure_future(call_http(mw, "GET", f"/{i}")) for i in range(6)]
    await _settle()
    assert reg.get_sample_value("asgi_kit_requests_in_flight") == 2
    assert reg.get_sample_value("asgi_kit_requests_queued") == 2
    gate.release.set()
    responses = await asyncio.gather(*tasks)
    statuses = [r.status for r in responses]
    assert statuses.count(200) == 4
    assert statuses.count(503) == 2
    assert gate.peak == 2
    for response in responses:
        if response.status == 503:
            assert response.header("retry-after") == "7"
            assert detail(response) == "Server busy, retry later"
    # FIFO: the two queued requests ran in arrival order, after the first two.
    assert gate.order == ["/0", "/1", "/2", "/3"]
    assert reg.get_sample_value("asgi_kit_requests_in_flight") == 0
    assert reg.get_sample_value("asgi_kit_requests_queued") == 0
    assert reg.get_sample_value("asgi_kit_requests_shed_total", {"reason": "queue_full"}) == 2


async def test_queue_timeout_sheds_the_waiter() -> None:
    gate = Gate()
    reg = registry()
    mw = limits(gate, max_concurrency=1, max_queue=5, queue_timeout=0.05, registry=reg)
    first = asyncio.ensure_future(call_http(mw, "GET", "/first"))
    await _settle()
    waited = await call_http(mw, "GET", "/second")
    assert waited.status == 503
    assert waited.header("retry-after") == "1"
    assert reg.get_sample_value("asgi_kit_requests_shed_total", {"reason": "queue_timeout"}) == 1
    assert reg.get_sample_value("asgi_kit_requests_queued") == 0
    gate.release.set()
    assert (await first).status == 200
    assert gate.order == ["/first"]
    assert mw._active == 0


async def test_cancelled_waiter_leaves_the_queue() -> None:
    gate = Gate()
    mw = limits(gate, max_concurrency=1, max_queue=5)
    first = asyncio.ensure_future(call_http(mw, "GET", "/first"))
    await _settle()
    waiter = asyncio.ensure_future(call_http(mw, "GET", "/gone"))
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(mw._queue) == 0
    gate.release.set()
    await first
    assert mw._active == 0
    assert (await call_http(mw, "GET", "/next")).status == 200


async def test_a_slot_is_freed_when_the_app_raises() -> None:
    async def boom(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    mw = limits(boom, max_concurrency=1)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await call_http(mw, "GET", "/")
    assert mw._active == 0


async def test_refused_requests_do_not_take_a_slot() -> None:
    app = BodyReader()
    mw = limits(app, max_body_size=1, max_concurrency=1)
    assert (await call_http(mw, "POST", "/", headers={"content-length": "5"})).status == 413
    assert mw._active == 0


async def test_websockets_hold_a_slot_while_open() -> None:
    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass
            return
        await ok_app(scope, receive, send)

    mw = limits(ws_app, max_concurrency=1)
    async with websocket(mw) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(1))["type"] == "websocket.accept"
        assert mw._active == 1
        busy = await call_http(mw, "GET", "/")
        assert busy.status == 503
        scope = websocket_scope(http_response_extension=True)
        async with websocket(mw, scope) as refused:
            await refused.send_input({"type": "websocket.connect"})
            answer = await refused.receive_output(1)
            assert answer["type"] == "websocket.http.response.start"
            assert answer["status"] == 503
            assert (b"retry-after", b"1") in answer["headers"]
        async with websocket(mw) as closed:
            await closed.send_input({"type": "websocket.connect"})
            assert await closed.receive_output(1) == {"type": "websocket.close", "code": 1013}
        await ws.send_input({"type": "websocket.disconnect", "code": 1000})
        await ws.wait(1)
    assert mw._active == 0

    free = limits(ws_app, max_concurrency=1, limit_websockets=False)
    async with websocket(free) as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(1))["type"] == "websocket.accept"
        assert free._active == 0
        assert (await call_http(free, "GET", "/")).status == 200


async def test_excluded_paths_skip_every_limit() -> None:
    gate = Gate()
    mw = limits(gate, max_concurrency=1, max_body_size=1, exclude_paths=["/health", "/admin/*"])
    first = asyncio.ensure_future(call_http(mw, "GET", "/work"))
    await _settle()
    health = asyncio.ensure_future(
        call_http(mw, "POST", "/admin/upload", headers={"content-length": "100"})
    )
    await _settle()
    assert gate.running == 2
    gate.release.set()
    assert (await health).status == 200
    assert (await first).status == 200


async def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    mw = limits(app, max_concurrency=1, timeout=1, max_body_size=1)
    await mw({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    assert mw._active == 0


# --------------------------------------------------------------------------- metrics and logs


def test_several_instances_share_one_registry() -> None:
    reg = registry()
    a = RequestLimitsMiddleware(ok_app, max_concurrency=2, registry=reg)
    b = RequestLimitsMiddleware(ok_app, max_concurrency=2, registry=reg)
    a._active, b._active = 1, 2
    assert reg.get_sample_value("asgi_kit_requests_in_flight") == 3
    RequestLimitsMiddleware(ok_app, registry=None)  # no metrics at all


def test_a_clashing_metric_name_is_a_clear_error() -> None:
    reg = registry()
    Gauge("asgi_kit_requests_in_flight", "someone else's", registry=reg)
    with pytest.raises(ValueError, match="registry"):
        RequestLimitsMiddleware(ok_app, registry=reg)


async def _three_refusals() -> None:
    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(30)

    mw = limits(slow, max_body_size=5, timeout=0.02)
    await call_http(mw, "POST", "/a", headers={"content-length": "9"})
    await call_http(mw, "POST", "/b", headers={"content-length": "x"})
    await call_http(mw, "GET", "/c")


EXPECTED_REFUSALS = [
    (413, "body_too_large", "/a"),
    (400, "malformed_content_length", "/b"),
    (504, "timeout", "/c"),
]


async def test_every_refusal_is_logged_once_through_stdlib_logging(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(structlog, "is_configured", lambda: False)
    caplog.set_level(logging.WARNING, logger="asgi_kit.limits")
    await _three_refusals()
    records = [r for r in caplog.records if r.name == "asgi_kit.limits"]
    got = [(r.status, r.reason, r.path) for r in records]  # type: ignore[attr-defined]
    assert got == EXPECTED_REFUSALS
    assert all(r.levelno == logging.WARNING for r in records)


async def test_every_refusal_is_one_structlog_event() -> None:
    with structlog.testing.capture_logs() as events:
        await _three_refusals()
    assert [(e["status"], e["reason"], e["path"]) for e in events] == EXPECTED_REFUSALS
    assert {e["event"] for e in events} == {"request refused"}
    assert {e["log_level"] for e in events} == {"warning"}


async def test_refusal_messages_are_fresh_each_time() -> None:
    mw = limits(ok_app, max_body_size=1)
    first = await call_http(mw, "POST", "/", headers={"content-length": "5"})
    first.start["headers"].append((b"x-mutated", b"1"))
    second = await call_http(mw, "POST", "/", headers={"content-length": "5"})
    assert second.header("x-mutated") is None


# --------------------------------------------------------------------------- hostile input

_header_value = st.one_of(
    st.binary(max_size=24),
    st.from_regex(rb"\A[0-9 ,\t]{0,24}\Z"),
    st.integers(min_value=0, max_value=10**30).map(lambda n: str(n).encode()),
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(_header_value, max_size=3),
    names=st.lists(
        st.sampled_from([b"content-length", b"Content-Length", b"CONTENT-LENGTH"]),
        min_size=3,
        max_size=3,
    ),
)
async def test_hostile_content_length_gets_a_clean_status(
    values: list[bytes], names: list[bytes]
) -> None:
    app = BodyReader()
    scope = http_scope("POST", "/")
    scope["headers"] = list(zip(names, values, strict=False))
    response = await call_http(limits(app, max_body_size=100, registry=None), scope=scope)
    length = parse_content_length(values)
    if length == MALFORMED:
        assert response.status == 400
    elif length is not None and length > 100:
        assert response.status == 413
    else:
        assert response.status == 200
    assert (app.calls == 1) == (response.status == 200)


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_an_app_failing_on_the_disconnect_is_not_a_second_error(
    timeout: float | None,
) -> None:
    class ClientDisconnect(Exception):
        pass

    async def strict(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect  # what Starlette's request.stream() does
            if not message.get("more_body"):
                break
        await send(START)
        await send(OK)

    mw = limits(strict, max_body_size=5, timeout=timeout)
    response = await call_http(mw, "POST", "/", body=[b"x" * 4] * 3, http_version="2")
    assert response.status == 413


async def test_one_timer_serves_many_requests_each_on_its_own_deadline() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(float(scope["path"][1:]))
        await send(START)
        await send(OK)

    mw = limits(app, timeout=0.2)

    async def later(delay: float, path: str) -> int:
        await asyncio.sleep(delay)
        return (await call_http(mw, "GET", path)).status

    statuses = await asyncio.gather(
        later(0, "/0.01"), later(0, "/5"), later(0.1, "/0.15"), later(0.1, "/5"), later(0.15, "/0")
    )
    assert statuses == [200, 504, 200, 504, 200]
    timers = mw._timers
    assert timers is not None and timers[1] is not None
    assert timers[1].entries == {}
    assert timers[1].handle is None


async def _drive_chunked(mw: Any, chunks: list[bytes]) -> tuple[list[Message], int]:
    """Send ``chunks`` as a chunked body; return what was sent and how many were read."""
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        if pending:
            read += 1
            return pending.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("POST", "/", [("Transfer-Encoding", "chunked")])
    await mw(scope, receive, send)
    return sent, read


async def test_a_streamed_413_lingers_for_a_bounded_rest_of_the_body() -> None:
    app = BodyReader()
    mw = limits(app, max_body_size=10)
    sent, read = await _drive_chunked(mw, [b"x" * 8] * 6)
    assert sent[0]["status"] == 413
    # No Connection: close, so the server keeps reading while we drain.
    assert (b"connection", b"close") not in sent[0]["headers"]
    assert read == 6  # the rest of a small body was read (and dropped), not left unread
    assert app.seen <= 16


async def test_the_linger_stops_at_its_byte_budget() -> None:
    from asgi_kit import limits as module

    app = BodyReader()
    mw = limits(app, max_body_size=10)
    chunk = b"y" * (256 * 1024)
    sent, read = await _drive_chunked(mw, [chunk] * 40)  # 10 MiB
    assert sent[0]["status"] == 413
    assert read <= 2 + module._LINGER_BYTES // len(chunk) + 1
