"""RequestIDMiddleware: reuse, generation, echo, scope state, contextvars, spans."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import structlog
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asgi_kit import RequestIDMiddleware, get_request_id
from asgi_kit.logging import is_valid_request_id, uuid4_hex
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import asgi_client, call_http, http_scope, websocket, websocket_scope

VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

seen: dict[str, Any] = {}


async def recording_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Records what the app sees of the id, then answers with it in the body."""
    seen["state"] = scope.get("state", {}).get("request_id")
    seen["var"] = get_request_id()
    seen["structlog"] = structlog.contextvars.get_contextvars().get("request_id")
    body = (seen["var"] or "").encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(autouse=True)
def _clean() -> None:
    seen.clear()
    structlog.contextvars.clear_contextvars()


async def test_generates_uuid4_hex_and_echoes_it_everywhere() -> None:
    response = await call_http(RequestIDMiddleware(recording_app))
    ids = response.header_all("x-request-id")
    assert len(ids) == 1
    request_id = ids[0]
    assert uuid.UUID(hex=request_id).version == 4
    assert uuid.UUID(hex=request_id).hex == request_id
    assert seen == {"state": request_id, "var": request_id, "structlog": request_id}
    assert response.body == request_id.encode()


def test_uuid4_hex_is_a_valid_random_uuid() -> None:
    values = {uuid4_hex() for _ in range(200)}
    assert len(values) == 200
    for value in values:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert is_valid_request_id(value)


async def test_reuses_a_valid_incoming_id() -> None:
    incoming = "req-01HZY3:abc.DEF_9"
    response = await call_http(
        RequestIDMiddleware(recording_app), headers={"X-Request-ID": incoming}
    )
    assert response.header_all("x-request-id") == [incoming]
    assert seen["state"] == seen["var"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "",
        "a" * 129,
        "has space",
        "evil\r\nset-cookie: x=1",
        "semi;colon",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
        "caf\xe9",
        "<script>",
    ],
)
async def test_invalid_incoming_ids_are_replaced_never_echoed(incoming: str) -> None:
    response = await call_http(
        RequestIDMiddleware(recording_app), headers=[(b"x-request-id", incoming.encode("latin-1"))]
    )
    [echoed] = response.header_all("x-request-id")
    assert echoed != incoming
    assert len(echoed) == 32 and seen["var"] == echoed


def test_default_validator_bounds() -> None:
    assert is_valid_request_id("a")
    assert is_valid_request_id("a" * 128)
    assert not is_valid_request_id("a" * 129)
    assert not is_valid_request_id("")
    assert not is_valid_request_id("ä")


async def test_custom_header_name_generator_and_validator() -> None:
    app = RequestIDMiddleware(
        recording_app,
        header_name="X-Correlation-ID",
        generator=lambda: "generated-1",
        validator=re.compile(r"ok-[0-9]+").fullmatch,
    )
    response = await call_http(app, headers={"x-correlation-id": "ok-123"})
    assert response.header_all("x-correlation-id") == ["ok-123"]
    assert response.header("x-request-id") is None
    response = await call_http(app, headers={"x-correlation-id": "nope"})
    assert response.header_all("x-correlation-id") == ["generated-1"]


async def test_custom_validator_cannot_let_unsafe_bytes_through() -> None:
    app = RequestIDMiddleware(recording_app, generator=lambda: "fresh", validator=lambda v: True)
    response = await call_http(app, headers=[(b"x-request-id", b"a b\tc")])
    assert response.header_all("x-request-id") == ["fresh"]
    response = await call_http(app, headers=[(b"x-request-id", b"x" * 2000)])
    assert response.header_all("x-request-id") == ["fresh"]


async def test_validator_that_raises_counts_as_rejection() -> None:
    def explode(value: str) -> bool:
        raise RuntimeError("buggy validator")

    app = RequestIDMiddleware(recording_app, generator=lambda: "fresh", validator=explode)
    response = await call_http(app, headers={"x-request-id": "abc"})
    assert response.status == 200
    assert response.header_all("x-request-id") == ["fresh"]


async def test_validator_none_never_trusts_incoming_ids() -> None:
    app = RequestIDMiddleware(recording_app, validator=None)
    response = await call_http(app, headers={"x-request-id": "abc"})
    [echoed] = response.header_all("x-request-id")
    assert echoed != "abc" and len(echoed) == 32


async def test_app_set_header_is_replaced_once_any_case() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"X-Request-ID", b"from-app"), (b"x-request-id", b"again")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(RequestIDMiddleware(app), headers={"x-request-id": "mine"})
    assert response.header_all("x-request-id") == ["mine"]


async def test_shared_app_messages_are_not_mutated() -> None:
    headers = [(b"content-type", b"text/plain")]
    start = {"type": "http.response.start", "status": 200, "headers": headers}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": b"x"})

    middleware = RequestIDMiddleware(app)
    for _ in range(3):
        response = await call_http(middleware)
        assert len(response.header_all("x-request-id")) == 1
    assert headers == [(b"content-type", b"text/plain")]
    assert start["headers"] is headers


async def test_state_is_created_or_reused() -> None:
    scope = http_scope()
    del scope["state"]
    await call_http(RequestIDMiddleware(recording_app), scope=scope)
    assert scope["state"]["request_id"] == seen["var"]
    scope = http_scope(state={"other": 1})
    await call_http(RequestIDMiddleware(recording_app), scope=scope)
    assert scope["state"] == {"other": 1, "request_id": seen["var"]}


async def test_contextvars_restored_after_request_and_after_error() -> None:
    structlog.contextvars.bind_contextvars(request_id="outer", user="u1")
    await call_http(RequestIDMiddleware(recording_app))
    assert seen["structlog"] != "outer"
    assert structlog.contextvars.get_contextvars() == {"request_id": "outer", "user": "u1"}
    assert get_request_id() == "outer"  # the binding in force before the request

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        await call_http(RequestIDMiddleware(failing))
    assert structlog.contextvars.get_contextvars() == {"request_id": "outer", "user": "u1"}
    assert get_request_id() == "outer"  # the binding in force before the request


async def test_no_binding_leaks_into_next_request_on_same_task() -> None:
    middleware = RequestIDMiddleware(recording_app)
    assert get_request_id() is None
    await call_http(middleware)
    first = seen["var"]
    assert structlog.contextvars.get_contextvars() == {}
    assert get_request_id() is None
    await call_http(middleware)
    assert seen["var"] != first


async def test_span_attribute_when_recording() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("server"):
        response = await call_http(RequestIDMiddleware(recording_app))
    [span] = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["request.id"] == response.header("x-request-id")

    exporter.clear()
    with tracer.start_as_current_span("server"):
        await call_http(RequestIDMiddleware(recording_app, span_attribute=None))
    [span] = exporter.get_finished_spans()
    assert "request.id" not in (span.attributes or {})


async def test_no_span_is_fine() -> None:
    response = await call_http(RequestIDMiddleware(recording_app))
    assert response.status == 200


async def test_websocket_accept_carries_id() -> None:
    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        seen["var"] = get_request_id()
        await send({"type": "websocket.accept", "headers": [(b"x-other", b"1")]})
        await send({"type": "websocket.close", "code": 1000})

    async with websocket(
        RequestIDMiddleware(ws_app), websocket_scope(headers={"x-request-id": "ws-1"})
    ) as ws:
        await ws.send_input({"type": "websocket.connect"})
        accept = await ws.receive_output(2)
        assert accept["type"] == "websocket.accept"
        assert accept["headers"] == [(b"x-other", b"1"), (b"x-request-id", b"ws-1")]
    assert seen["var"] == "ws-1"


async def test_websocket_denial_response_carries_id() -> None:
    async def deny(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no"})

    scope = websocket_scope(http_response_extension=True)
    async with websocket(RequestIDMiddleware(deny), scope) as ws:
        await ws.send_input({"type": "websocket.connect"})
        start = await ws.receive_output(2)
        assert start["status"] == 403
        [(name, value)] = start["headers"]
        assert name == b"x-request-id" and len(value) == 32


async def test_lifespan_passes_through() -> None:
    calls: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    await RequestIDMiddleware(app)(scope, receive, send)
    assert calls == [{"type": "lifespan", "asgi": {"version": "3.0"}}]


async def test_asgi2_app() -> None:
    class Legacy:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await recording_app(self.scope, receive, send)

    response = await call_http(RequestIDMiddleware(Legacy))
    assert response.body == response.header("x-request-id").encode()  # type: ignore[union-attr]


async def test_starlette_request_state() -> None:
    api = FastAPI()

    @api.get("/")
    async def index(request: Request) -> dict[str, Any]:
        return {"state": request.state.request_id, "var": get_request_id()}

    api.add_middleware(RequestIDMiddleware)
    async with asgi_client(api) as client:
        response = await client.get("/", headers={"X-Request-ID": "fa-1"})
    assert response.json() == {"state": "fa-1", "var": "fa-1"}
    assert response.headers.get_list("x-request-id") == ["fa-1"]


def test_option_validation() -> None:
    with pytest.raises(ValueError, match="header_name"):
        RequestIDMiddleware(recording_app, header_name="bad header")
    with pytest.raises(TypeError, match="header_name"):
        RequestIDMiddleware(recording_app, header_name=b"x-id")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator"):
        RequestIDMiddleware(recording_app, generator="uuid")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="validator"):
        RequestIDMiddleware(recording_app, validator="strict")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="span_attribute"):
        RequestIDMiddleware(recording_app, span_attribute="")


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
async def test_any_incoming_header_yields_a_safe_id(raw: bytes) -> None:
    response = await call_http(RequestIDMiddleware(recording_app), headers=[(b"x-request-id", raw)])
    [echoed] = response.header_all("x-request-id")
    assert VALID_ID.fullmatch(echoed)
    if VALID_ID.fullmatch(raw.decode("latin-1")):
        assert echoed == raw.decode()
    else:
        assert len(echoed) == 32


async def test_error_response_carries_the_id_and_reraises() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    sent: list[Message] = []
    with pytest.raises(RuntimeError, match="boom"):
        await call_http(
            RequestIDMiddleware(failing, error_response=True),
            headers={"x-request-id": "err-1"},
            on_send=sent.append,
        )
    assert sent[0]["status"] == 500
    assert (b"x-request-id", b"err-1") in sent[0]["headers"]
    assert sent[1]["body"] == b"Internal Server Error"

    # Off by default: the server answers, without the id.
    sent.clear()
    with pytest.raises(RuntimeError):
        await call_http(RequestIDMiddleware(failing), on_send=sent.append)
    assert sent == []


async def test_error_response_not_sent_after_response_started() -> None:
    async def failing_late(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("late")

    sent: list[Message] = []
    with pytest.raises(RuntimeError):
        await call_http(RequestIDMiddleware(failing_late, error_response=True), on_send=sent.append)
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert sent[0]["status"] == 200


async def test_error_response_under_starlette_server_error_middleware() -> None:
    api = FastAPI()

    @api.get("/")
    async def index() -> None:
        raise RuntimeError("handler bug")

    api.add_middleware(RequestIDMiddleware, error_response=True)
    sent: list[Message] = []
    with pytest.raises(RuntimeError, match="handler bug"):
        await call_http(api, headers={"x-request-id": "fa-err"}, on_send=sent.append)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1  # ServerErrorMiddleware sees a started response: no second 500
    assert starts[0]["status"] == 500
    assert (b"x-request-id", b"fa-err") in starts[0]["headers"]


def test_generator_output_checked_at_start_up() -> None:
    with pytest.raises(TypeError, match="generator"):
        RequestIDMiddleware(recording_app, generator=lambda: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="generator"):
        RequestIDMiddleware(recording_app, generator=lambda: "has space")
    with pytest.raises(ValueError, match="generator"):
        RequestIDMiddleware(recording_app, generator=lambda: "")


async def test_keys_the_app_binds_do_not_outlive_the_request() -> None:
    # "Restores the previous contextvars": not only request_id, every structlog key.
    structlog.contextvars.bind_contextvars(user="outer")

    async def binding_app(scope: Scope, receive: Receive, send: Send) -> None:
        structlog.contextvars.bind_contextvars(user="alice", tenant="t1")
        structlog.contextvars.unbind_contextvars("user")
        structlog.contextvars.bind_contextvars(user="bob")
        await recording_app(scope, receive, send)

    middleware = RequestIDMiddleware(binding_app)
    await call_http(middleware)
    assert structlog.contextvars.get_contextvars() == {"user": "outer"}
    structlog.contextvars.clear_contextvars()

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        structlog.contextvars.bind_contextvars(tenant="t2")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        await call_http(RequestIDMiddleware(failing))
    assert structlog.contextvars.get_contextvars() == {}
    await call_http(middleware)
    assert structlog.contextvars.get_contextvars() == {}
