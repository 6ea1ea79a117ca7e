"""AccessLogMiddleware: one event per request, fields, levels, errors, disconnects."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from structlog.testing import capture_logs

from asgi_kit import AccessLogMiddleware, RequestIDMiddleware, get_request_id
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import asgi_client, call_http, http_scope, websocket, websocket_scope


def body_app(status: int = 200, chunks: tuple[bytes, ...] = (b"hello",)) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": status, "headers": []})
        for i, chunk in enumerate(chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )

    return app


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


async def test_one_event_with_all_fields() -> None:
    app = RequestIDMiddleware(AccessLogMiddleware(body_app(chunks=(b"abc", b"defg", b""))))
    with capture_logs() as logs:
        response = await call_http(
            app,
            "POST",
            "/items",
            headers={"user-agent": "curl/8.5", "x-request-id": "rid-1"},
            body=[b"12345", b"678"],
            query_string=b"token=secret",
            client=("198.51.100.4", 4321),
            http_version="2",
        )
    assert response.body == b"abcdefg"
    [event] = logs
    duration = event.pop("duration_ms")
    assert isinstance(duration, float) and 0 <= duration < 10_000
    assert event == {
        "event": "request",
        "log_level": "info",
        "method": "POST",
        "path": "/items",
        "status": 200,
        "client": "198.51.100.4",
        "user_agent": "curl/8.5",
        "request_bytes": 8,
        "response_bytes": 7,
        "http_version": "2",
        "scheme": "http",
        "request_id": "rid-1",
        "disconnected": False,
    }


async def test_query_string_is_opt_in() -> None:
    app = AccessLogMiddleware(body_app(), log_query_string=True)
    with capture_logs() as logs:
        await call_http(app, query_string=b"a=1&b=2")
        await call_http(app)
    assert logs[0]["query"] == "a=1&b=2"
    assert "query" not in logs[1]


async def test_request_id_from_contextvar_when_outside_state() -> None:
    # AccessLog outside RequestID still sees the id: it is in the shared scope state.
    app = AccessLogMiddleware(RequestIDMiddleware(body_app()))
    with capture_logs() as logs:
        response = await call_http(app)
    assert logs[0]["request_id"] == response.header("x-request-id")


@pytest.mark.parametrize(
    ("status", "level"),
    [(101, "info"), (200, "info"), (302, "info"), (404, "info"), (500, "error"), (503, "error")],
)
async def test_level_by_status(status: int, level: str) -> None:
    with capture_logs() as logs:
        await call_http(AccessLogMiddleware(body_app(status)))
    assert logs[0]["log_level"] == level
    assert logs[0]["status"] == status


async def test_levels_are_configurable() -> None:
    app = AccessLogMiddleware(body_app(404), levels={"4xx": "warning", "2xx": "debug"})
    with capture_logs() as logs:
        await call_http(app)
    assert logs[0]["log_level"] == "warning"
    with pytest.raises(ValueError, match="levels"):
        AccessLogMiddleware(body_app(), levels={"6xx": "info"})
    with pytest.raises(ValueError, match="levels"):
        AccessLogMiddleware(body_app(), levels={"4xx": "loud"})
    with pytest.raises(TypeError, match="levels"):
        AccessLogMiddleware(body_app(), levels=["4xx"])  # type: ignore[arg-type]


async def test_exclude_paths() -> None:
    app = AccessLogMiddleware(body_app(), exclude_paths=["/health", "/internal/*"])
    with capture_logs() as logs:
        for path in ("/health", "/internal/metrics", "/healthz", "/"):
            assert (await call_http(app, path=path)).status == 200
    assert [e["path"] for e in logs] == ["/healthz", "/"]
    with pytest.raises(ValueError, match="exclude_paths"):
        AccessLogMiddleware(body_app(), exclude_paths=["health"])


async def test_exception_logged_with_traceback_and_reraised() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("kaboom")

    with capture_logs() as logs, pytest.raises(RuntimeError, match="kaboom"):
        await call_http(AccessLogMiddleware(failing))
    [event] = logs
    assert event["log_level"] == "error"
    assert event["status"] == 500
    assert isinstance(event["exc_info"], RuntimeError)
    assert event["exc_info"].__traceback__ is not None


async def test_exception_after_start_keeps_sent_status() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid-stream")

    with capture_logs() as logs, pytest.raises(RuntimeError):
        await call_http(AccessLogMiddleware(failing))
    assert logs[0]["status"] == 200
    assert logs[0]["response_bytes"] == 4
    assert logs[0]["log_level"] == "error"


async def test_exception_level_configurable() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("x")

    with capture_logs() as logs, pytest.raises(RuntimeError):
        await call_http(AccessLogMiddleware(failing, levels={"exception": "critical"}))
    assert logs[0]["log_level"] == "critical"


async def test_client_disconnect_mid_response() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 206, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        message = await receive()  # the client went away
        assert message["type"] == "http.disconnect"

    async def receive_then_disconnect() -> Message:
        receive_then_disconnect.calls += 1  # type: ignore[attr-defined]
        if receive_then_disconnect.calls == 1:  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    receive_then_disconnect.calls = 0  # type: ignore[attr-defined]

    async def send(message: Message) -> None:
        pass

    with capture_logs() as logs:
        await AccessLogMiddleware(streaming)(http_scope(), receive_then_disconnect, send)
    [event] = logs
    assert event["disconnected"] is True
    assert event["status"] == 206
    assert event["response_bytes"] == 5
    assert event["log_level"] == "info"


async def test_disconnect_after_complete_response_is_not_flagged() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await body_app()(scope, receive, send)
        assert (await receive())["type"] == "http.disconnect"

    with capture_logs() as logs:
        await call_http(AccessLogMiddleware(app))
    assert logs[0]["disconnected"] is False


async def test_send_failing_on_gone_client_is_disconnect_not_error() -> None:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError("client gone")

    with capture_logs() as logs, pytest.raises(ConnectionResetError):
        await AccessLogMiddleware(body_app(201))(http_scope(), receive, send)
    [event] = logs
    assert event["disconnected"] is True
    assert event["status"] == 201
    assert "exc_info" not in event
    assert event["log_level"] == "info"


async def test_cancelled_request_is_logged_as_disconnected() -> None:
    started = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()
        await asyncio.sleep(30)

    with capture_logs() as logs:
        task = asyncio.create_task(call_http(AccessLogMiddleware(slow)))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [event] = logs
    assert event["disconnected"] is True
    assert event["status"] == 200


async def test_trace_and_span_ids_when_span_active() -> None:
    tracer = TracerProvider().get_tracer("test")
    with capture_logs() as logs:
        with tracer.start_as_current_span("server") as span:
            await call_http(AccessLogMiddleware(body_app()))
        await call_http(AccessLogMiddleware(body_app()))
    context = span.get_span_context()
    assert logs[0]["trace_id"] == f"{context.trace_id:032x}"
    assert logs[0]["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in logs[1] and "span_id" not in logs[1]


async def test_route_template_from_fastapi() -> None:
    api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    api.add_middleware(AccessLogMiddleware)
    with capture_logs() as logs:
        async with asgi_client(api) as client:
            assert (await client.get("/items/42")).status_code == 200
    assert logs[0]["path"] == "/items/42"
    assert logs[0]["route"] == "/items/{item_id}"


async def test_websocket_one_event_per_connection() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text")})

    with capture_logs() as logs:
        async with websocket(AccessLogMiddleware(echo), websocket_scope()) as ws:
            await ws.send_input({"type": "websocket.connect"})
            assert (await ws.receive_output(2))["type"] == "websocket.accept"
            await ws.send_input({"type": "websocket.receive", "text": "héllo"})
            assert (await ws.receive_output(2))["text"] == "héllo"
            await ws.send_input({"type": "websocket.receive", "bytes": b"\x00\x01"})
            await ws.receive_output(2)
            await ws.send_input({"type": "websocket.disconnect", "code": 1001})
            await ws.wait(2)
    [event] = logs
    assert event["event"] == "websocket"
    assert event["status"] == 101
    assert event["close_code"] == 1001
    assert event["disconnected"] is True
    assert event["request_bytes"] == len("héllo".encode()) + 2
    assert event["path"] == "/ws"
    assert "method" not in event


async def test_websocket_refused_and_app_close() -> None:
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})

    with capture_logs() as logs:
        async with websocket(AccessLogMiddleware(refuse), websocket_scope()) as ws:
            await ws.send_input({"type": "websocket.connect"})
            assert (await ws.receive_output(2))["type"] == "websocket.close"
            await ws.wait(2)
    assert logs[0]["status"] == 403
    assert logs[0]["close_code"] == 1008
    assert logs[0]["disconnected"] is False


async def test_websocket_exception_logged() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise KeyError("ws bug")

    with capture_logs() as logs:
        async with websocket(AccessLogMiddleware(broken), websocket_scope()) as ws:
            await ws.send_input({"type": "websocket.connect"})
            with pytest.raises(KeyError):
                await ws.wait(2)
    assert logs[0]["log_level"] == "error"
    assert isinstance(logs[0]["exc_info"], KeyError)


async def test_lifespan_and_excluded_websocket_pass_through() -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    middleware = AccessLogMiddleware(app, exclude_paths=["/ws"])
    with capture_logs() as logs:
        await middleware({"type": "lifespan"}, receive, send)
        await middleware(websocket_scope(), receive, send)
    assert calls == ["lifespan", "websocket"]
    assert logs == []


async def test_asgi2_app_and_custom_logger() -> None:
    class Legacy:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await body_app()(self.scope, receive, send)

    class ListLogger:
        def __init__(self) -> None:
            self.events: list[tuple[str, str, dict[str, Any]]] = []

        def info(self, event: str, **kw: Any) -> None:
            self.events.append(("info", event, kw))

        def error(self, event: str, **kw: Any) -> None:
            self.events.append(("error", event, kw))

    logger = ListLogger()
    response = await call_http(AccessLogMiddleware(Legacy, logger, event="http"))
    assert response.body == b"hello"
    [(level, event, fields)] = logger.events
    assert (level, event, fields["status"], fields["response_bytes"]) == ("info", "http", 200, 5)
    with pytest.raises(TypeError, match="logger"):
        AccessLogMiddleware(Legacy, logger=object())
    with pytest.raises(ValueError, match="event"):
        AccessLogMiddleware(Legacy, event="")


async def test_routed_to_stdlib_logging_uses_access_logger_name() -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    stdlib_logger = logging.getLogger("asgi_kit.access")
    stdlib_logger.addHandler(handler)
    stdlib_logger.setLevel(logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    try:
        app = RequestIDMiddleware(AccessLogMiddleware(body_app(503)))
        response = await call_http(app, path="/down")

        async def failing(scope: Scope, receive: Receive, send: Send) -> None:
            raise RuntimeError("db down")

        with pytest.raises(RuntimeError):
            await call_http(RequestIDMiddleware(AccessLogMiddleware(failing)))
    finally:
        stdlib_logger.removeHandler(handler)
        stdlib_logger.setLevel(logging.NOTSET)
    assert [r.name for r in records] == ["asgi_kit.access", "asgi_kit.access"]
    assert records[0].levelno == logging.ERROR
    first = json.loads(records[0].getMessage())
    assert first["logger"] == "asgi_kit.access"
    assert first["path"] == "/down" and first["status"] == 503
    assert first["request_id"] == response.header("x-request-id")
    second = json.loads(records[1].getMessage())
    assert "RuntimeError: db down" in second["exception"]
    assert "Traceback" in second["exception"]


async def test_json_renderer_with_structlog_only() -> None:
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    await call_http(RequestIDMiddleware(AccessLogMiddleware(body_app())), path="/j")
    line = json.loads(out.getvalue().strip())
    assert line["event"] == "request" and line["path"] == "/j" and line["level"] == "info"
    assert len(line["request_id"]) == 32 and "timestamp" in line


async def test_default_structlog_config_does_not_crash(capsys: pytest.CaptureFixture[str]) -> None:
    response = await call_http(AccessLogMiddleware(body_app()), path="/plain")
    assert response.status == 200
    assert "/plain" in capsys.readouterr().out


async def test_thousand_concurrent_requests_keep_their_own_ids() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        log = structlog.get_logger("app")
        await asyncio.sleep(0)
        log.info("handler", seen=get_request_id())
        await asyncio.sleep(0)
        body = scope["state"]["request_id"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": body})

    stack = RequestIDMiddleware(AccessLogMiddleware(app))
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        responses = await asyncio.gather(
            *(
                call_http(stack, headers={"x-request-id": f"r{i}"} if i % 2 else None)
                for i in range(1000)
            )
        )
    ids = [r.header("x-request-id") for r in responses]
    assert len(set(ids)) == 1000
    assert all(r.body.decode() == rid for r, rid in zip(responses, ids, strict=True))
    assert ids[1] == "r1" and ids[999] == "r999"
    handler_lines = [e for e in logs if e["event"] == "handler"]
    access_lines = [e for e in logs if e["event"] == "request"]
    assert len(handler_lines) == len(access_lines) == 1000
    # Each line carries its own request's id (bound via contextvars), never another's.
    assert all(e["request_id"] == e["seen"] for e in handler_lines)
    assert {e["request_id"] for e in handler_lines} == set(ids)
    assert {e["request_id"] for e in access_lines} == set(ids)
    assert structlog.contextvars.get_contextvars() == {}


def test_logger_must_have_the_level_methods_it_will_get() -> None:
    class InfoOnly:
        def info(self, event: str, **kw: Any) -> None:
            pass

    with pytest.raises(TypeError, match="error"):
        AccessLogMiddleware(body_app(), logger=InfoOnly())

    class Full(InfoOnly):
        def error(self, event: str, **kw: Any) -> None:
            pass

    AccessLogMiddleware(body_app(), logger=Full())
    with pytest.raises(TypeError, match="warning"):
        AccessLogMiddleware(body_app(), logger=Full(), levels={"4xx": "warning"})


async def test_lazy_logger_follows_configuration_made_after_construction() -> None:
    # Middleware is usually built at import time, before logging is configured.
    structlog.configure(cache_logger_on_first_use=True)
    middleware = AccessLogMiddleware(body_app(), logger=structlog.get_logger("late"))
    default = AccessLogMiddleware(body_app())
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    await call_http(middleware, path="/a")
    await call_http(default, path="/b")
    assert [json.loads(line)["path"] for line in out.getvalue().splitlines()] == ["/a", "/b"]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user_agent=st.binary(max_size=300),
    query=st.binary(max_size=100),
    path=st.text(max_size=50),
)
async def test_any_client_input_yields_one_event(
    user_agent: bytes, query: bytes, path: str
) -> None:
    events: list[dict[str, Any]] = []

    class Collect:
        def info(self, event: str, **fields: Any) -> None:
            events.append(fields)

        error = info

    app = AccessLogMiddleware(body_app(), logger=Collect(), log_query_string=True)
    scope = http_scope(path="/" + path, headers=[(b"user-agent", user_agent)], query_string=query)
    await call_http(app, scope=scope)
    [fields] = events
    assert fields["user_agent"] == user_agent.decode("latin-1")
    assert fields.get("query", "") == query.decode("latin-1")
    assert fields["path"] == "/" + path


async def test_app_returning_without_response_is_logged_as_500() -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    with capture_logs() as logs:
        await call_http(AccessLogMiddleware(silent))
    assert logs[0]["status"] == 500 and logs[0]["log_level"] == "error"
    assert logs[0]["disconnected"] is False


async def test_app_returning_mid_response_without_disconnect_is_not_flagged() -> None:
    async def truncated(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})

    with capture_logs() as logs:
        await call_http(AccessLogMiddleware(truncated), disconnect_after_body=False)
    assert logs[0]["status"] == 200 and logs[0]["disconnected"] is False


async def test_filtered_levels_are_skipped_before_building_fields() -> None:
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    ).bind()
    app = AccessLogMiddleware(body_app(), logger=logger)
    assert app._is_enabled_for is not None
    await call_http(app, path="/ok")
    await call_http(AccessLogMiddleware(body_app(503), logger=logger), path="/down")
    assert [json.loads(line)["path"] for line in out.getvalue().splitlines()] == ["/down"]

    class Refusing:
        def is_enabled_for(self, level: int) -> bool:
            return False

        def info(self, event: str, **kw: Any) -> None:
            raise AssertionError("must not be called")

        error = info

    await call_http(AccessLogMiddleware(body_app(), logger=Refusing()))


async def test_event_is_emitted_when_the_response_completes_not_after_background_work() -> None:
    events_before_background: list[int] = []

    async def with_background(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        # Background work after the response (Starlette's BackgroundTasks run here).
        events_before_background.append(len(logs))
        await asyncio.sleep(0.2)

    with capture_logs() as logs:
        await call_http(AccessLogMiddleware(with_background))
    assert events_before_background == [1]
    [event] = logs
    assert event["status"] == 201 and event["response_bytes"] == 4
    assert event["duration_ms"] < 200  # the background sleep is not counted


async def test_error_in_background_work_after_the_response_is_reraised_once_logged() -> None:
    async def failing_later(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        raise RuntimeError("background task failed")

    with capture_logs() as logs, pytest.raises(RuntimeError, match="background"):
        await call_http(AccessLogMiddleware(failing_later))
    [event] = logs  # the response the client got; the server logs the error itself
    assert event["status"] == 200 and event["log_level"] == "info"
    assert "exc_info" not in event


async def test_starlette_500_then_reraise_is_logged_with_the_exception() -> None:
    # ServerErrorMiddleware (outermost in every Starlette app) sends its 500,
    # then re-raises: the access event must still carry the exception.
    api = FastAPI()

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("view failed")

    with capture_logs() as logs, pytest.raises(RuntimeError, match="view failed"):
        await call_http(AccessLogMiddleware(api), path="/boom")
    [event] = logs
    assert event["status"] == 500 and event["log_level"] == "error"
    assert isinstance(event["exc_info"], RuntimeError)


async def test_ids_are_those_of_the_span_around_the_middleware_not_the_apps_own() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from asgi_kit import TracingMiddleware

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")

    async def app_with_own_span(scope: Scope, receive: Receive, send: Send) -> None:
        with tracer.start_as_current_span("render"):  # e.g. a framework's own span
            await body_app()(scope, receive, send)

    app = TracingMiddleware(AccessLogMiddleware(app_with_own_span), tracer_provider=provider)
    with capture_logs() as logs:
        await call_http(app)
    [server] = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    assert logs[0]["trace_id"] == f"{server.context.trace_id:032x}"
    assert logs[0]["span_id"] == f"{server.context.span_id:016x}"


async def test_a_stdlib_logger_is_accepted(caplog: pytest.LogCaptureFixture) -> None:
    stdlib = logging.getLogger("tests.access.stdlib")
    with caplog.at_level(logging.INFO, logger="tests.access.stdlib"):
        response = await call_http(AccessLogMiddleware(body_app(), logger=stdlib))
    assert response.status == 200
    [record] = [r for r in caplog.records if r.name == "tests.access.stdlib"]
    assert record.levelno == logging.INFO
    assert "request" in record.getMessage() and "status=200" in record.getMessage()
    with caplog.at_level(logging.ERROR, logger="tests.access.stdlib"):
        caplog.clear()
        await call_http(AccessLogMiddleware(body_app(), logger=stdlib))
    assert not [r for r in caplog.records if r.name == "tests.access.stdlib"]


async def test_a_failing_logger_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def info(self, event: str, **fields: Any) -> None:
            raise RuntimeError("log sink down")

        error = info

    with caplog.at_level(logging.ERROR, logger="asgi_kit.logging"):
        response = await call_http(AccessLogMiddleware(body_app(), logger=Broken()))
    assert response.status == 200 and response.body == b"hello"
    assert "log sink down" in caplog.text
