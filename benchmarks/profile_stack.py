"""Where the asgi_kit stack's time goes: ``python -m benchmarks.profile_stack``.

Two views of the stack from :mod:`benchmarks.bench_stack` (tracing with the
SDK and a dropping span processor, the same request):

1. **Leave-one-out.**  The full stack and nine variants, each without one
   middleware.  A middleware's cost is the median over rounds of
   ``full - without``, the two timed back to back.  The costs do not add up exactly
   to the full overhead: layers interact (without compression, everything
   outside it handles a 1 KB body instead of 300 bytes; without tracing,
   metrics record no exemplar and the access log no trace id).
2. **cProfile.**  A few thousand requests through the bare app and through
   the stack, with each function's own time summed per package and
   subtracted (stack minus bare app), then the costliest functions of the
   stack run.  Profiling inflates Python-level costs against C-level ones, so
   read it as a ranking, not as microseconds.

Prints markdown; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import platform
import pstats
import statistics
import sys
from pathlib import Path
from typing import Any

from . import bench_stack, stack_apps
from .driver import Scenario, _time


def _package(filename: str, function: str) -> str:
    """A readable owner for a profiled function."""
    if filename == "~":
        if "brotli" in function:
            return "brotli (C)"
        if "zlib" in function:
            return "zlib (C)"
        return "built-ins (C)"
    if "/asgi_kit/" in filename:
        return "asgi_kit/" + filename.split("/asgi_kit/", 1)[1]
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/benchmarks/" in filename:
        return "benchmarks/" + filename.split("/benchmarks/", 1)[1]
    return "stdlib " + filename.rsplit("/", 1)[-1]


def _short(filename: str) -> str:
    for marker in ("/asgi_kit/", "site-packages/", "/benchmarks/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.rsplit("/", 1)[-1]


async def _profile(app: Any, scenario: Scenario, requests: int) -> pstats.Stats:
    await _time(app, scenario, min(requests, 500))  # warm caches and lazy imports
    profiler = cProfile.Profile()
    profiler.enable()
    await _time(app, scenario, requests)
    profiler.disable()
    return pstats.Stats(profiler)


def _by_package(stats: pstats.Stats) -> collections.Counter[str]:
    totals: collections.Counter[str] = collections.Counter()
    for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        totals[_package(filename, function)] += row[2]
    return totals


def _checked_stack() -> tuple[Any, dict[str, Any], Any, stack_apps.Stack]:
    """The bare app, the request, the SDK provider and the sanity-checked stack."""
    bare = stack_apps.bare_app()
    scope = bench_stack.stack_scope(stack_apps.cookie_header())
    provider, spans = stack_apps.sdk_provider()
    stack = stack_apps.build_asgi_kit(bare, provider, spans)
    bench_stack.sanity_check(stack, "asgi_kit", scope)
    return bare, scope, provider, stack


async def _paired(
    full: Any, variants: dict[str, Any], scenario: Scenario, requests: int, rounds: int
) -> tuple[list[float], dict[str, list[float]]]:
    """Per round: the stack's overhead, and ``full - without`` timed back to back.

    Each difference comes from two adjacent timings (their order alternates
    between rounds), so slow drifts of a shared machine cancel out instead of
    landing on whichever variant ran during a busy second.
    """
    totals: list[float] = []
    diffs: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(rounds):
        bare_us = await _time(scenario.bare, scenario, requests)
        totals.append(await _time(full, scenario, requests) - bare_us)
        for name, app in variants.items():
            if round_no % 2:
                with_it = await _time(full, scenario, requests)
                without = await _time(app, scenario, requests)
            else:
                without = await _time(app, scenario, requests)
                with_it = await _time(full, scenario, requests)
            diffs[name].append(with_it - without)
    return totals, diffs


def leave_one_out(requests: int, rounds: int) -> str:
    bare, scope, provider, full = _checked_stack()
    variants = {
        name: stack_apps.build_asgi_kit(bare, provider, None, without=frozenset({name})).app
        for name in stack_apps.LAYERS
    }
    scenario = Scenario("leave-one-out", bare=bare, ours=full.app, scope=scope)
    for app in (full.app, *variants.values()):  # warm up, as bench_stack does
        asyncio.run(_time(app, scenario, min(bench_stack.WARM_UP // 3, 2 * requests)))
    totals, diffs = asyncio.run(_paired(full.app, variants, scenario, requests, rounds))
    total = statistics.median(totals)
    costs = {name: statistics.median(values) for name, values in diffs.items()}
    lines = [
        f"Full stack overhead: **{total:.0f} µs** per request; each layer's cost is the "
        f"median over {rounds} rounds of (full - without it), timed back to back, "
        f"{requests} requests each.",
        "",
        "| middleware (outermost first) | µs (full - without it) | share of the overhead |",
        "|---|---:|---:|",
    ]
    for name in reversed(stack_apps.LAYERS):
        cost = costs[name]
        lines.append(f"| {name} | {cost:.0f} | {100 * cost / total:.0f}% |")
    lines.append(f"| sum of the above | {sum(costs.values()):.0f} | |")
    return "\n".join(lines)


def profile(requests: int, top: int) -> str:
    bare, scope, _provider, stack = _checked_stack()
    scenario = Scenario("profile", bare=bare, ours=stack.app, scope=scope)
    bare_stats = asyncio.run(_profile(bare, scenario, requests))
    stack_stats = asyncio.run(_profile(stack.app, scenario, requests))
    bare_pkg, stack_pkg = _by_package(bare_stats), _by_package(stack_stats)
    extra = {
        k: (stack_pkg[k] - bare_pkg[k]) / requests * 1e6 for k in set(bare_pkg) | set(stack_pkg)
    }
    lines = [
        f"cProfile, {requests} requests; own time per package, stack minus bare app "
        "(µs per request under the profiler):",
        "",
        "| package / module | µs |",
        "|---|---:|",
    ]
    for name, us in sorted(extra.items(), key=lambda kv: -kv[1]):
        if us >= 1.0:
            lines.append(f"| {name} | {us:.1f} |")
    lines += [
        "",
        f"The {top} functions with the most own time in the stack run "
        "(the app's own functions included):",
        "",
        "| function | calls per request | own µs per request |",
        "|---|---:|---:|",
    ]
    rows = sorted(
        stack_stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: -kv[1][2],
    )[:top]
    for (filename, line, function), (_cc, ncalls, tottime, _ct, _callers) in rows:
        where = function if filename == "~" else f"{_short(filename)}:{line} {function}"
        lines.append(f"| `{where}` | {ncalls / requests:.0f} | {tottime / requests * 1e6:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_stack")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--profile-requests", type=int, default=3000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    parts = [
        leave_one_out(args.requests, args.rounds),
        profile(args.profile_requests, args.top),
    ]
    header = (
        f"Python {platform.python_version()} on {platform.machine()}; asgi_kit stack, OTel SDK."
    )
    return stack_apps.publish("\n\n".join([header, *parts]), args.out)


if __name__ == "__main__":
    sys.exit(main())
