"""Run an ASGI app in a real server process (Uvicorn, Hypercorn, Daphne, Granian).

The app is named by import path (``"tests.apps.demo:app"``); the repository
root and ``examples/`` are on the server's ``PYTHONPATH``.  The server binds a
free loopback port and is stopped when the test ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("uvicorn", "hypercorn", "daphne", "granian")
_GRANIAN_READY = "Started worker"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(server: str, target: str, port: int, args: Sequence[str]) -> list[str]:
    py = sys.executable
    if server == "uvicorn":
        return [
            py,
            "-m",
            "uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *args,
        ]
    if server == "hypercorn":
        return [
            py,
            "-m",
            "hypercorn",
            target,
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *args,
        ]
    if server == "daphne":
        return [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", *args, target]
    if server == "granian":
        # Granian serves RSGI unless told otherwise; one worker process (it
        # imports the app there, with the environment and PYTHONPATH given).
        # Info level for its "Started worker" line: see _wait_ready.
        return [
            py,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "info",
            "--no-access-log",
            *args,
            target,
        ]
    raise ValueError(f"unknown server {server!r}; expected one of {SERVERS}")


class ServerProcess:
    """One running server; ``url`` is its base URL (``http://127.0.0.1:PORT``)."""

    def __init__(
        self,
        server: str,
        target: str,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.server = server
        self.target = target
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(ROOT / "examples"), full_env.get("PYTHONPATH", "")]
        )
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            _command(server, target, self.port, args),
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.server} exited with {self.proc.returncode}:\n{self.log()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            # Granian's main process listens before its worker has imported
            # the app; the worker says when it serves.
            if self.server != "granian" or _GRANIAN_READY in self.log():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.server} did not listen within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        # pread: the server writes through the same open file, so moving its
        # offset with seek() could make it overwrite what it wrote.
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


class LiveServerFactory:
    """Starts servers of one kind (``self.server``) and stops them at teardown."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._running: list[ServerProcess] = []

    def __call__(
        self,
        target: str,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> ServerProcess:
        proc = ServerProcess(self.server, target, env=env, args=args)
        self._running.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._running:
            proc.stop()
        self._running.clear()


def run_python(
    code: str, *, env: Mapping[str, str] | None = None, timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, as the servers run apps.

    For code that needs a process of its own, such as Django under another
    settings module.  The repository root and ``examples/`` are on its
    ``PYTHONPATH``; output is captured as text and the return code not checked.
    """
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "examples"), full_env.get("PYTHONPATH", "")]
    )
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
