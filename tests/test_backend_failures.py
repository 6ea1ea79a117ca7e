"""Backend-failure reporting: collapsed logs and the failures counter, on a real dead Redis."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from asgi_kit import RateLimitMiddleware, RedisBackend, RedisStore, Rule, SessionMiddleware
from asgi_kit._backend_failures import METRIC_NAME, FailureLog, failure_counter

from ._support.asgi import call_http

HEADERS = [(b"Content-Type", b"text/plain")]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}


async def app(scope: Any, receive: Any, send: Any) -> None:
    if "session" in scope:
        scope["session"]["seen"] = True
    await send(START)
    await send({"type": "http.response.body", "body": b"ok"})


def dead_url() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def samples(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == METRIC_NAME:
                labels = sample.labels
                out[(labels["component"], labels["backend"], labels["outcome"])] = sample.value
    return out


@pytest.fixture
def stdlib_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(structlog, "is_configured", lambda: False)


async def test_a_flood_of_failures_logs_once_then_one_summary_per_interval(
    caplog: pytest.LogCaptureFixture, stdlib_logging: None
) -> None:
    registry = CollectorRegistry()
    backend = RedisBackend(dead_url(), timeout=2.0, registry=registry, failure_log_interval=0.3)
    allow = RateLimitMiddleware(app, rules=[Rule("5/minute")], backend=backend)
    deny = RateLimitMiddleware(
        app, rules=[Rule("5/minute")], backend=backend, on_backend_error="deny"
    )
    with caplog.at_level(logging.ERROR, logger="asgi_kit.ratelimit"):
        first = await asyncio.gather(*(call_http(allow) for _ in range(200)))
        await asyncio.gather(*(call_http(deny) for _ in range(50)))
        records = [r for r in caplog.records if r.name == "asgi_kit.ratelimit"]
        # One line per kind of outcome at once, however many requests failed.
        assert len(records) == 2
        assert "ConnectionError" in records[0].getMessage()
        assert {r.outcome for r in records} == {"allow", "deny"}  # type: ignore[attr-defined]
        # Then, still within the flood, one summary each with its count.
        await _wait_for(lambda: len(_summaries(caplog)) >= 2)
        summaries = _summaries(caplog)
        assert sorted(r.failures for r in summaries) == [49, 199]  # type: ignore[attr-defined]
        assert "199 more failures" in " ".join(r.getMessage() for r in summaries)
        # A quiet interval ends the episode: the next failure is logged at once.
        caplog.clear()
        await asyncio.sleep(0.7)
        assert _summaries(caplog) == []
        await call_http(allow)
        assert len([r for r in caplog.records if r.name == "asgi_kit.ratelimit"]) == 1
    assert [r.status for r in first] == [200] * 200
    assert samples(registry) == {
        ("ratelimit", "RedisBackend", "allow"): 201.0,
        ("ratelimit", "RedisBackend", "deny"): 50.0,
    }
    await backend.close()


def _summaries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "(repeated)" in r.getMessage()]


async def _wait_for(condition: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_session_store_failures_are_counted_and_collapsed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    store = RedisStore(dead_url(), timeout=2.0, registry=registry)
    mw = SessionMiddleware(app, "secret", store=store)
    with caplog.at_level(logging.ERROR, logger="asgi_kit.sessions"):
        responses = await asyncio.gather(*(call_http(mw) for _ in range(100)))
    assert all(r.status == 200 and r.header("set-cookie") is None for r in responses)
    records = [r for r in caplog.records if r.name == "asgi_kit.sessions"]
    assert len(records) == 1 and "failed to save" in records[0].getMessage()
    assert records[0].exc_info is not None  # the first one carries its traceback
    assert samples(registry) == {("sessions", "RedisStore", "save"): 100.0}
    await store.aclose()


def test_the_counter_registers_once_per_registry() -> None:
    registry = CollectorRegistry()
    a = failure_counter(registry)
    assert failure_counter(registry) is a
    # Another copy of the module (or of the process's state) registering the
    # same name reuses the registered counter instead of raising.
    from asgi_kit import _backend_failures

    _backend_failures._counters.clear()
    assert failure_counter(registry) is a
    FailureLog("ratelimit", object(), "x", registry=registry)  # no error either


def test_options_validated() -> None:
    with pytest.raises(ValueError, match="failure_log_interval"):
        RedisBackend("redis://localhost", failure_log_interval=0)
    with pytest.raises(TypeError, match="registry"):
        RedisStore("redis://localhost", registry="default")  # type: ignore[arg-type]


def test_a_backend_that_cannot_be_weakly_referenced_gets_a_log_too() -> None:
    from asgi_kit._backend_failures import failure_log

    class Slotted:
        __slots__ = ()  # no __weakref__

    first = failure_log("ratelimit", Slotted(), "x")
    assert failure_log("ratelimit", Slotted(), "x") is first  # one per class then
    assert first.backend == "Slotted"
