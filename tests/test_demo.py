"""``make demo``: the commands it prints work as printed, and stopping it is clean.

The demo runs as ``make``'s direct child (``exec``), handles SIGTERM and Ctrl-C
by shutting Uvicorn down gracefully and exiting 0, so ``make`` never reports
``make: *** [demo] Terminated``.  GNU make itself, when it receives the signal
too (Ctrl-C reaches the whole process group), still ends by that signal once
its child is done; that is make's own behaviour, without an error line.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from ._support.servers import free_port

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]


class Demo:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DEMO_PORT": str(self.port)}
        env.pop("REDIS_URL", None)
        self.proc = subprocess.Popen(
            ["make", "--no-print-directory", "demo"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as in a terminal
        )
        deadline = time.monotonic() + 180  # the first run installs the demo extra
        while True:
            assert self.proc.poll() is None, self.proc.communicate()[0]
            try:
                httpx.get(self.url + "/health", timeout=1)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "make demo did not start"
                time.sleep(0.1)

    def server_pid(self) -> int:
        """The demo's Python process: make's only child."""
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert len(children) == 1, children
        return int(children[0])

    def finish(self) -> str:
        return self.proc.communicate(timeout=30)[0]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def demo() -> Iterator[Demo]:
    running = Demo()
    try:
        yield running
    finally:
        running.kill()


def test_sigterm_stops_the_demo_cleanly_and_printed_commands_work(demo: Demo) -> None:
    assert httpx.get(demo.url + "/health", headers={"x-request-id": "demo-1"}).status_code == 200
    with connect(f"ws://127.0.0.1:{demo.port}/ws") as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "ping"

    os.kill(demo.server_pid(), signal.SIGTERM)
    output = demo.finish()
    assert demo.proc.returncode == 0, output
    assert "asgi_kit demo stopped." in output
    assert "make: ***" not in output

    # The WebSocket command names an interpreter that has websockets installed.
    (line,) = [line for line in output.splitlines() if "-m websockets" in line]
    command = shlex.split(re.sub(r"^\s*WebSocket echo\s+", "", line))
    assert command[1:3] == ["-m", "websockets"]
    assert command[0] != "python"
    check = subprocess.run([command[0], "-c", "import websockets"], cwd=ROOT, check=False)
    assert check.returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm-group"])
def test_signal_to_the_whole_group_stops_without_a_make_error(demo: Demo, signum: int) -> None:
    os.killpg(demo.proc.pid, signum)
    output = demo.finish()
    assert "asgi_kit demo stopped." in output
    assert "make: ***" not in output
    assert "Traceback" not in output
    # make re-raises the signal it received on itself after its child exited 0.
    assert demo.proc.returncode in (0, -signum)
