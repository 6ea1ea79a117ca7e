"""In-process benchmark driver: per-request overhead of middleware, as ratios.

Each :class:`Scenario` names asgi_kit's candidate and the anchors users would
pick instead.  Every candidate is called ``requests`` times per round with a
prebuilt scope (about a dozen realistic browser headers), a one-message
request body and a discard-all ``send``.  Rounds interleave the candidates
(bare app first, then the others in an order that rotates every round), and
each candidate's overhead for a round is its time minus the bare app's time
in the same round.  The reported figure is the median over rounds, so
machine noise that hits one round does not skew the ratio.

Timings are for comparison within one run only; they are never asserted.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Scope = dict[str, Any]
App = Callable[..., Any]

BROWSER_HEADERS: list[tuple[bytes, bytes]] = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-GB,en;q=0.7,de;q=0.3"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"referer", b"https://www.example.com/dashboard"),
    (b"connection", b"keep-alive"),
    (b"upgrade-insecure-requests", b"1"),
    (b"sec-fetch-dest", b"document"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-site", b"same-site"),
    (b"priority", b"u=0, i"),
]


def make_scope(
    method: str = "GET",
    path: str = "/",
    *,
    headers: Iterable[tuple[bytes, bytes]] | None = None,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
    drop: Iterable[bytes] = (),
    scope_type: str = "http",
    **extra: Any,
) -> Scope:
    """A realistic scope: browser headers (minus ``drop``) plus ``extra_headers``."""
    dropped = set(drop)
    raw = [(k, v) for k, v in (BROWSER_HEADERS if headers is None else headers) if k not in dropped]
    raw.extend(extra_headers)
    scope: Scope = {
        "type": scope_type,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("203.0.113.7", 51234),
        "server": ("api.example.com", 80),
        "extensions": {},
    }
    scope.update(extra)
    return scope


def json_app(
    body: bytes = b'{"ok":true}', content_type: bytes = b"application/json", status: int = 200
) -> App:
    """A bare raw-ASGI app answering every request with ``body``."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body})

    return app


def optional(factory: Callable[[], App]) -> App | str:
    """Build an anchor, or return why it is unavailable (not installed, ...)."""
    try:
        return factory()
    except ImportError as exc:
        return f"not installed ({exc.name or exc})"


@dataclass
class Scenario:
    """One comparison: the bare app, asgi_kit's candidate, and the anchors."""

    name: str
    bare: App
    ours: App
    anchors: dict[str, App | str] = field(default_factory=dict)
    scope: Scope = field(default_factory=make_scope)
    body: bytes = b""
    #: Optional per-call scope factory (e.g. a fresh client address each call).
    scope_factory: Callable[[int], Scope] | None = None
    #: The ratio asgi_kit/anchor the project aims for (printed, never asserted).
    goal: float | None = None


async def _discard(message: Any) -> None:
    return None


async def _time(app: App, scenario: Scenario, requests: int) -> float:
    """Microseconds per request for ``requests`` sequential calls."""
    body = scenario.body
    base = scenario.scope
    factory = scenario.scope_factory
    request_msg = {"type": "http.request", "body": body, "more_body": False}
    disconnect = {"type": "http.disconnect"}
    send = _discard
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for i in range(requests):
            scope = factory(i) if factory is not None else dict(base)
            scope["headers"] = list(scope["headers"])
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return disconnect
                sent = True
                return dict(request_msg)

            await app(scope, receive, send)
        elapsed = time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed / requests / 1000.0


@dataclass
class Row:
    scenario: str
    anchor: str
    ours_us: float | None
    anchor_us: float | None
    note: str = ""
    goal: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.ours_us is None or not self.anchor_us or self.anchor_us <= 0:
            return None
        return max(self.ours_us, 0.0) / self.anchor_us


async def run_scenario(scenario: Scenario, requests: int, rounds: int) -> list[Row]:
    """Interleave bare/ours/anchors for ``rounds`` rounds; return one row per anchor."""
    candidates: dict[str, App] = {"asgi_kit": scenario.ours}
    notes: dict[str, str] = {}
    for label, anchor in scenario.anchors.items():
        if isinstance(anchor, str):
            notes[label] = anchor
        else:
            candidates[label] = anchor
    overheads: dict[str, list[float]] = {label: [] for label in candidates}
    labels = list(candidates)
    # One warm-up round (imports, caches, lazy compressors), then measured rounds.
    for round_no in range(rounds + 1):
        bare = await _time(scenario.bare, scenario, requests)
        shift = round_no % len(labels)
        for label in labels[shift:] + labels[:shift]:
            elapsed = await _time(candidates[label], scenario, requests)
            if round_no:
                overheads[label].append(elapsed - bare)
    medians = {label: statistics.median(values) for label, values in overheads.items()}
    ours = medians["asgi_kit"]
    rows = [
        Row(scenario.name, label, ours, medians[label], goal=scenario.goal) for label in labels[1:]
    ]
    rows += [
        Row(scenario.name, label, ours, None, note, scenario.goal) for label, note in notes.items()
    ]
    if not rows:
        rows.append(Row(scenario.name, "-", ours, None, "no anchor", scenario.goal))
    return rows


def format_table(rows: list[Row]) -> str:
    """Markdown table: overhead in µs per request over the bare app, and the ratio."""
    lines = [
        "| scenario | asgi_kit µs | anchor | anchor µs | ratio (asgi_kit/anchor) | goal |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        ours = f"{row.ours_us:.2f}" if row.ours_us is not None else "-"
        anchor = f"{row.anchor_us:.2f}" if row.anchor_us is not None else row.note or "-"
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        goal = f"≤ {row.goal:.2f}" if row.goal is not None else ""
        lines.append(f"| {row.scenario} | {ours} | {row.anchor} | {anchor} | {ratio} | {goal} |")
    return "\n".join(lines)


def run(scenarios: Iterable[Scenario], requests: int = 5000, rounds: int = 7) -> list[Row]:
    async def main() -> list[Row]:
        rows: list[Row] = []
        for scenario in scenarios:
            rows.extend(await run_scenario(scenario, requests, rounds))
        return rows

    return asyncio.run(main())
