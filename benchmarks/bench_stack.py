"""The whole stack: nine asgi_kit middleware against the anchors users stack today.

Both stacks wrap one shared FastAPI app (``GET /items/{item_id}``, about 1 KB
of JSON) and see the same request: browser headers with
``Accept-Encoding: gzip, deflate, br, zstd``, an allowed ``Origin``, a valid
signed session cookie for each stack, and ``X-Forwarded-For`` /
``X-Forwarded-Proto`` from a trusted proxy (the peer is ``127.0.0.1``).  See
:mod:`benchmarks.stack_apps` for the two stacks.

Before any timing, :func:`sanity_check` sends one request through every stack
and asserts that it did the whole job (200, brotli body, CORS headers, a
request id, rate-limit headers, the session read, the forwarded client, a
metric series under the route template, a span), so a misconfigured stack
can never be measured.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import brotli

from . import stack_apps
from .driver import Scenario, _time, make_scope, optional
from .stack_apps import Stack

PATH = "/items/42"
ROUTE = "/items/{item_id}"


def stack_scope(cookie: bytes) -> dict[str, Any]:
    """The benchmark request, as it arrives from the proxy at ``127.0.0.1``."""
    return make_scope(
        "GET",
        PATH,
        extra_headers=stack_apps.request_headers(cookie),
        client=(stack_apps.PROXY, 51234),
    )


async def _call(app: Any, scope: dict[str, Any]) -> tuple[int, dict[bytes, list[bytes]], bytes]:
    messages: list[dict[str, Any]] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(dict(scope, headers=list(scope["headers"])), receive, send)
    start = messages[0]
    headers: dict[bytes, list[bytes]] = {}
    for name, value in start["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], headers, body


def _series(registry: Any, name_suffix: str, label: str) -> set[str]:
    """Label values of ``label`` on samples whose name ends with ``name_suffix``."""
    return {
        sample.labels.get(label, "")
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name.endswith(name_suffix) and label in sample.labels
    }


def sanity_check(stack: Stack, kind: str, scope: dict[str, Any]) -> None:
    """Assert that ``stack`` (``"asgi_kit"`` or ``"anchor"``) did all of its work."""
    ended = stack.spans.ended if stack.spans is not None else 0
    events = stack.extra["logger"].events if "logger" in stack.extra else 0
    status, headers, body = asyncio.run(_call(stack.app, scope))

    def one(name: bytes) -> bytes:
        values = headers.get(name, [])
        assert len(values) == 1, f"{kind}: expected one {name!r} header, got {values}"
        return values[0]

    assert status == 200, f"{kind}: status {status}"
    assert one(b"content-encoding") == b"br", f"{kind}: body not compressed with br"
    data = json.loads(brotli.decompress(body))
    assert data["item_id"] == 42
    assert data["owner"] == "ann", f"{kind}: the session was not read ({data['owner']!r})"
    assert data["client"] == stack_apps.FORWARDED_FOR, f"{kind}: proxy headers not applied"
    assert data["scheme"] == "https", f"{kind}: forwarded scheme not applied"
    assert one(b"access-control-allow-origin") == stack_apps.ORIGIN.encode()
    assert one(b"access-control-allow-credentials") == b"true"
    vary = b",".join(headers.get(b"vary", [])).lower()
    assert b"origin" in vary and b"accept-encoding" in vary, f"{kind}: Vary is {vary!r}"
    assert len(one(b"x-request-id")) >= 32, f"{kind}: no generated request id"
    assert b"set-cookie" not in headers, f"{kind}: an unchanged session was re-sent"
    if kind == "asgi_kit":
        logger = stack.extra["logger"]
        assert logger.events == events + 1, f"{kind}: expected one access-log event"
        assert logger.last["status"] == 200 and logger.last["request_id"]
        assert one(b"ratelimit-limit") == b"1000000"
        assert int(one(b"content-length")) == len(body)
        routes = _series(stack.registry, "http_server_request_duration_seconds_count", "route")
    else:
        assert one(b"x-ratelimit-limit") == b"1000000"
        routes = _series(stack.registry, f"{stack_apps.EXPORTER_PREFIX}_requests_total", "path")
    assert ROUTE in routes, f"{kind}: no metric series for {ROUTE} (got {routes})"
    if stack.spans is not None:
        assert stack.spans.ended == ended + 1, f"{kind}: expected one span"
        if kind == "asgi_kit":
            attributes = stack.spans.last.attributes
            assert attributes.get("http.route") == ROUTE
            assert attributes.get("request.id") == one(b"x-request-id").decode()


#: Requests run through each stack before timing.  The driver's single warm-up
#: round is not enough here: the anchor stack needs a few thousand requests
#: before its per-request time settles (it was 2-3x slower in early rounds).
WARM_UP = 3000


def checked(stack: Stack, kind: str, scope: dict[str, Any]) -> Any:
    """``stack.app`` once it passed :func:`sanity_check` and was warmed up."""
    sanity_check(stack, kind, scope)
    warm_up = WARM_UP
    if warm_up:
        scenario = Scenario("warm-up", bare=stack.app, ours=stack.app, scope=scope)
        asyncio.run(_time(stack.app, scenario, warm_up))
    return stack.app


def _no_sdk_name() -> str:
    """The no-SDK scenario's name, honest about a global provider set by someone else."""
    from opentelemetry import trace

    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return "full stack, no OTel SDK"
    return "full stack, global OTel provider (set elsewhere in this process)"


def scenarios() -> list[Scenario]:
    bare = stack_apps.bare_app()
    scope = stack_scope(stack_apps.cookie_header())
    status, _, body = asyncio.run(_call(bare, scope))
    assert status == 200 and json.loads(body)["client"] == stack_apps.PROXY
    provider, spans = stack_apps.sdk_provider()

    def scenario(name: str, provider: Any, spans: Any) -> Scenario:
        ours = checked(stack_apps.build_asgi_kit(bare, provider, spans), "asgi_kit", scope)
        return Scenario(
            name,
            bare=bare,
            ours=ours,
            anchors={
                "anchor stack": optional(
                    lambda: checked(stack_apps.build_anchor(bare, provider, spans), "anchor", scope)
                )
            },
            scope=scope,
            goal=0.5,
        )

    return [
        scenario("full stack, OTel SDK (dropping span processor)", provider, spans),
        scenario(_no_sdk_name(), None, None),
    ]


#: Requests per timing and rounds of :func:`report`'s parts-alone comparison.
PARTS_REQUESTS = 500
PARTS_ROUNDS = 7


async def _parts_rounds(
    bare: Any, full: Any, alone: dict[str, Any], scenario: Scenario, requests: int, rounds: int
) -> tuple[list[float], dict[str, list[float]]]:
    """Per round: the stack's overhead and each layer's alone, each against an adjacent bare run.

    Every difference comes from two back-to-back timings whose order
    alternates between rounds, so the drift of a shared machine cancels out.
    """

    async def overhead(app: Any, round_no: int) -> float:
        if round_no % 2:
            with_it = await _time(app, scenario, requests)
            return with_it - await _time(bare, scenario, requests)
        bare_us = await _time(bare, scenario, requests)
        return await _time(app, scenario, requests) - bare_us

    totals: list[float] = []
    parts: dict[str, list[float]] = {name: [] for name in alone}
    for round_no in range(rounds):
        totals.append(await overhead(full, round_no))
        for name, app in alone.items():
            parts[name].append(await overhead(app, round_no))
    return totals, parts


def report() -> str:
    """The stack against the sum of its parts, each measured alone in the same run.

    A layer "alone" is that one middleware around the bare app, given the
    same request.  The issue's goal: stack overhead <= the sum of the parts'.
    """
    import statistics

    bare = stack_apps.bare_app()
    scope = stack_scope(stack_apps.cookie_header())
    provider, spans = stack_apps.sdk_provider()
    full = checked(stack_apps.build_asgi_kit(bare, provider, spans), "asgi_kit", scope)
    everything = frozenset(stack_apps.LAYERS)
    alone = {
        name: stack_apps.build_asgi_kit(bare, provider, None, without=everything - {name}).app
        for name in stack_apps.LAYERS
    }
    scenario = Scenario("parts", bare=bare, ours=full, scope=scope)
    for app in (bare, *alone.values()):
        asyncio.run(_time(app, scenario, PARTS_REQUESTS))
    totals, parts = asyncio.run(
        _parts_rounds(bare, full, alone, scenario, PARTS_REQUESTS, PARTS_ROUNDS)
    )
    total = statistics.median(totals)
    costs = {name: statistics.median(values) for name, values in parts.items()}
    summed = sum(costs.values())
    lines = [
        f"Stack vs the sum of its parts (OTel SDK; median of {PARTS_ROUNDS} rounds, "
        f"{PARTS_REQUESTS} requests each; each part is one middleware alone around the "
        "bare app, timed in the same round):",
        "",
        "| layer (outermost first) | µs alone |",
        "|---|---:|",
        *(f"| {name} | {costs[name]:.1f} |" for name in reversed(stack_apps.LAYERS)),
        f"| **sum of the parts** | **{summed:.1f}** |",
        f"| **the stack** | **{total:.1f}** |",
        "",
        f"stack / sum of parts: **{total / summed:.2f}** (goal <= 1.00)",
    ]
    return "\n".join(lines)
