"""Throughput over real sockets: ``python -m benchmarks.throughput``.

For each of the bare app, the asgi_kit stack and the anchor stack, with the
OpenTelemetry SDK (a dropping span processor) and without it (see
:mod:`benchmarks.stack_apps`), this starts one Uvicorn process (one worker,
``127.0.0.1``, a free port, ``--no-access-log``, ``--log-level warning``,
``--no-proxy-headers`` so the stacks' own proxy middleware does that work),
checks one response over the socket, warms up, then drives it with Debian's
``wrk`` for a bounded time.  Rounds interleave the three servers, and the
best round of each is reported (noise on a shared machine only ever slows a
round down).  Prints a markdown table; ``--out FILE`` also writes it.

Needs ``wrk`` (``apt-get install wrk``); exits with status 2 without it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import brotli

from . import stack_apps

ROOT = Path(__file__).resolve().parent.parent
PATH = "/items/42"
#: (label, factory in benchmarks.stack_apps)
APPS = [
    ("bare app", "bare"),
    ("asgi_kit stack", "asgi_kit_stack"),
    ("anchor stack", "anchor_stack"),
    ("asgi_kit stack, no OTel SDK", "asgi_kit_stack_no_sdk"),
    ("anchor stack, no OTel SDK", "anchor_stack_no_sdk"),
]
INSTALL_HINT = (
    "wrk is not installed. Install it with:\n"
    "    sudo apt-get install wrk      (Debian/Ubuntu; `make bench` does this when run as root)\n"
    "    brew install wrk              (macOS)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request_headers() -> dict[str, str]:
    """What a browser behind a proxy sends: wrk and the check use the same headers."""
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate, br, zstd",
        "Accept-Language": "en-GB,en;q=0.7",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0",
    }
    for name, value in stack_apps.request_headers(stack_apps.cookie_header()):
        headers[name.decode().title()] = value.decode("latin-1")
    return headers


@dataclass
class Server:
    label: str
    factory: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def start(self) -> None:
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"benchmarks.stack_apps:{self.factory}",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--no-proxy-headers",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def get(self, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", PATH, headers=headers)
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def wait_ready(self, headers: dict[str, str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.label}: uvicorn exited with {self.proc.returncode}")
            try:
                self.check(*self.get(headers))
                return
            except (ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.label}: not answering on {self.url}") from None
                time.sleep(0.2)

    def check(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """The same promises as the in-process sanity check, over a real socket."""
        assert status == 200, f"{self.label}: status {status}"
        if self.factory == "bare":
            assert json.loads(body)["item_id"] == 42
            return
        assert headers.get("content-encoding") == "br", f"{self.label}: not compressed"
        data = json.loads(brotli.decompress(body))
        assert data["owner"] == "ann", f"{self.label}: session not read"
        assert data["client"] == stack_apps.FORWARDED_FOR, f"{self.label}: proxy headers"
        assert headers.get("access-control-allow-origin") == stack_apps.ORIGIN
        assert "x-request-id" in headers and "set-cookie" not in headers
        limit = "ratelimit-limit" if self.factory.startswith("asgi_kit") else "x-ratelimit-limit"
        assert headers.get(limit) == "1000000", f"{self.label}: no rate-limit headers"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(
    server: Server, headers: dict[str, str], seconds: int, connections: int, threads: int
) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms) of one bounded wrk run against loopback."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(server.url)
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"{server.label}: wrk saw errors:\n{out}")
    return parse_wrk(out)


def parse_wrk(out: str) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms) from ``wrk --latency`` output."""
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))  # type: ignore[union-attr]
    # Anchored at the line start: the Stdev column can also end in "50%".
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    return rps, p50, p99


def format_table(servers: list[Server]) -> str:
    """Best round per server; "added" is the per-request time over the bare app's."""
    bare = max(servers[0].rps)
    lines = [
        "| app | requests/s | % of bare | µs per request (added) | p50 latency | p99 latency |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for server in servers:
        best = max(server.rps)
        i = server.rps.index(best)
        per_request = 1e6 / best
        added = per_request - 1e6 / bare
        lines.append(
            f"| {server.label} | {best:,.0f} | {100 * best / bare:.0f}% "
            f"| {per_request:.0f} (+{added:.0f}) "
            f"| {server.p50_ms[i]:.2f} ms | {server.p99_ms[i]:.2f} ms |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--rounds", type=int, default=2, help="wrk runs per server (best kept)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server")
    parser.add_argument("--out", type=Path, help="also write the markdown to this file")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --rounds, --connections and --threads must be >= 1")
    if shutil.which("wrk") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2

    headers = request_headers()
    servers = [Server(label, factory) for label, factory in APPS]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(headers)
            print(f"## {server.label}: ready on port {server.port}", file=sys.stderr)
            if args.warmup:
                run_wrk(server, headers, args.warmup, args.connections, args.threads)
        for round_no in range(args.rounds):
            # Rotate the order so slow phases of the machine hit every server.
            shift = round_no % len(servers)
            for server in servers[shift:] + servers[:shift]:
                rps, p50, p99 = run_wrk(
                    server, headers, args.duration, args.connections, args.threads
                )
                server.rps.append(rps)
                server.p50_ms.append(p50)
                server.p99_ms.append(p99)
                print(f"## round {round_no + 1}: {server.label} {rps:,.0f} req/s", file=sys.stderr)
        for server in servers:  # Still healthy after the load.
            server.check(*server.get(headers))
    finally:
        for server in servers:
            server.stop()

    text = "\n".join(
        [
            f"Python {platform.python_version()} on {platform.machine()}; Uvicorn, one worker, "
            f"loopback; wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
            f"best of {args.rounds} rounds.",
            "",
            format_table(servers),
        ]
    )
    return stack_apps.publish(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
