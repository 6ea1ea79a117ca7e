"""metrics_app (asgi_kit.metrics.exposition): formats, gzip, methods, threads, hostile Accept."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from asgi_kit import metrics_app
from asgi_kit.types import Message

from ._support.asgi import asgi_client, call_http, websocket
from ._support.metrics import (
    DURATION,
    OPENMETRICS,
    instrumented,
    samples,
    scrape,
    value,
)


def test_metrics_app_options_are_validated() -> None:
    with pytest.raises(TypeError, match="registry"):
        metrics_app(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="thread_threshold"):
        metrics_app(CollectorRegistry(), thread_threshold=-1)


# --------------------------------------------------------------------------- metrics_app


async def test_metrics_app_formats_gzip_and_methods() -> None:
    registry = CollectorRegistry()
    Counter("jobs", "Jobs done.", registry=registry).inc(3)
    app = metrics_app(registry)

    plain = await call_http(app)
    assert plain.status == 200
    assert plain.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    assert plain.header("content-length") == str(len(plain.body))
    assert plain.header("content-encoding") is None
    families = {f.name: f for f in text_string_to_metric_families(plain.body.decode())}
    assert families["jobs"].samples[0].value == 3

    om = await call_http(app, headers={"accept": OPENMETRICS})
    assert om.header(
        "content-type",
    ).startswith("application/openmetrics-text")  # type: ignore[union-attr]
    assert om.body.endswith(b"# EOF\n")
    assert [f.name for f in openmetrics_families(om.body.decode())] == ["jobs"]

    gz = await call_http(app, headers={"accept-encoding": "br, gzip;q=0.5"})
    assert gz.header("content-encoding") == "gzip"
    assert gzip.decompress(gz.body) == plain.body
    assert "Accept-Encoding" in (gz.header("vary") or "")
    refused = await call_http(app, headers={"accept-encoding": "gzip;q=0, *"})
    assert refused.header("content-encoding") is None
    star = await call_http(app, headers={"accept-encoding": "*"})
    assert star.header("content-encoding") == "gzip"
    off = await call_http(
        metrics_app(registry, disable_compression=True), headers={"accept-encoding": "gzip"}
    )
    assert off.header("content-encoding") is None

    head = await call_http(app, "HEAD")
    assert head.status == 200 and head.body == b""
    assert head.header("content-length") == plain.header("content-length")

    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        refused_method = await call_http(app, method)
        assert refused_method.status == 405
        assert refused_method.header("allow") == "GET, HEAD"


async def test_metrics_app_name_filter() -> None:
    registry = CollectorRegistry()
    Counter("alpha", "a", registry=registry).inc()
    Counter("beta", "b", registry=registry).inc()
    _, _, body = await scrape(registry, query=b"name[]=alpha_total")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert names == {"alpha"}
    _, _, body = await scrape(registry, query=b"name[]=%ZZ&&==;")
    assert {f.name for f in text_string_to_metric_families(body.decode())} == set()


async def test_metrics_app_refuses_websockets_and_answers_lifespan() -> None:
    app = metrics_app(CollectorRegistry())
    async with websocket(app, path="/metrics") as ws:
        await ws.send_input({"type": "websocket.connect"})
        assert (await ws.receive_output(1))["type"] == "websocket.close"
    sent: list[Message] = []
    queue = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Message:
        return queue.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_metrics_path_is_served_by_the_middleware() -> None:
    app, registry = instrumented(metrics_path="/metrics")
    async with asgi_client(app) as client:
        await client.get("/items/1")
        response = await client.get("/metrics")
        assert response.status_code == 200
        families = {f.name for f in text_string_to_metric_families(response.text)}
        assert DURATION in families
        # The app itself (FastAPI) has no /metrics route: the middleware answered.
        assert (await client.post("/metrics")).status_code == 405
    # Scrapes are excluded from the metrics by default ...
    found = await samples(registry)
    assert value(found, f"{DURATION}_count", route="/metrics") is None
    # ... and measured under their own route when not excluded.
    app2, registry2 = instrumented(metrics_path="/metrics", exclude_paths=())
    await call_http(app2, path="/metrics")
    assert value(await samples(registry2), f"{DURATION}_count", route="/metrics") == 1


class _ThreadRecorder:
    """A custom collector that records the thread the exposition runs in."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.threads.append(threading.current_thread())
        yield GaugeMetricFamily("recorder", "thread probe", value=1)


async def test_generation_moves_to_a_thread_when_slow() -> None:
    registry = CollectorRegistry()
    recorder = _ThreadRecorder()
    registry.register(recorder)
    main = threading.current_thread()

    # A cheap registry: the first scrape runs in a thread, later ones inline.
    app = metrics_app(registry)
    for _ in range(3):
        assert (await call_http(app)).status == 200
    assert recorder.threads[0] is not main
    assert recorder.threads[1:] == [main, main]

    # thread_threshold=0: every generation in a worker thread.
    recorder.threads.clear()
    always = metrics_app(registry, thread_threshold=0)
    for _ in range(3):
        await call_http(always)
    assert all(t is not main for t in recorder.threads)

    # A registry that became slow goes back to the thread.
    recorder.threads.clear()
    slow = metrics_app(registry, thread_threshold=0.05)
    await call_http(slow)  # thread, fast → inline next
    await call_http(slow)  # inline
    Sleepy(registry)
    await call_http(slow)  # inline, but slow → thread next
    await call_http(slow)
    assert [t is main for t in recorder.threads] == [False, True, True, False]


class Sleepy:
    def __init__(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import time

        time.sleep(0.06)
        yield GaugeMetricFamily("sleepy", "slow collector", value=1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(accept="application/openmetrics-text;version=x.y", encoding="gzip")
@example(accept="application/openmetrics-text;version=2.0.\x7f\xff", encoding="")
@example(accept="text/plain;version=1.a", encoding="gzip;q=abc, *;q=0")
@given(
    accept=st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from(
                [
                    "application/openmetrics-text",
                    "text/plain",
                    "version=",
                    "version=1.0.0",
                    "version=0.0.1",
                    "version=x.y",
                    "version=99999999999999999999.1",
                    "escaping=allow-utf-8",
                    "escaping=bogus",
                    "escaping=",
                    "q=0.5",
                    "q=abc",
                    ";",
                    ",",
                    "*/*",
                    "=",
                ]
            ),
            max_size=8,
        ).map(";".join),
    ),
    encoding=st.text(max_size=60),
)
def test_hostile_accept_never_fails(accept: str, encoding: str) -> None:
    registry = _HOSTILE_REGISTRY
    app = metrics_app(registry)
    headers = [
        (b"accept", accept.encode("utf-8", "replace")),
        (b"accept-encoding", encoding.encode("utf-8", "replace")),
    ]
    response = asyncio.run(call_http(app, headers=headers))
    assert response.status == 200
    body = response.body
    if response.header("content-encoding") == "gzip":
        body = gzip.decompress(body)
    content_type = response.header("content-type") or ""
    assert content_type.isascii() and content_type.isprintable()
    if content_type.startswith("application/openmetrics-text"):
        assert body.endswith(b"# EOF\n")
    else:
        assert any(f.name == "hostile" for f in text_string_to_metric_families(body.decode()))


_HOSTILE_REGISTRY = CollectorRegistry()
Counter("hostile", "Probe.", registry=_HOSTILE_REGISTRY).inc()
