"""A real ``redis-server`` on a free loopback port, for tests.

Persistence is off (``--save "" --appendonly no``).  Tests that need to kill
and restart Redis create their own :class:`RedisServer`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .servers import free_port


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def ping(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """Start, stop and restart a private redis-server (same port each time)."""

    def __init__(self, port: int | None = None) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self.binary = binary
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="asgi-kit-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self, timeout: float = 15.0) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if ping("127.0.0.1", self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {timeout}s")

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop ``proc`` (SIGTERM, then SIGKILL after 10 s) if it is running."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def flushall(url: str) -> None:
    """Empty the database behind ``url``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


# ------------------------------------------------------------------ distributed


def missing_tools(*names: str) -> list[str]:
    """The Redis binaries among ``names`` that are not on PATH."""
    return [name for name in names if shutil.which(name) is None]


def require_tools(*tools: str) -> None:
    """Skip the test without these Redis binaries; under CI=true, fail it instead."""
    import pytest

    missing = missing_tools(*tools)
    if missing:
        reason = (
            f"{', '.join(missing)} not installed (Debian: apt-get install redis-server "
            "redis-tools redis-sentinel; or run scripts/ensure-redis.sh)"
        )
        if in_ci():
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)


def _wait(condition: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll ``condition`` until it holds (never sleep-and-hope)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # not ready yet (refused, LOADING, CLUSTERDOWN...)
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


class _Process:
    """One redis-server / redis-sentinel process on a fixed loopback port."""

    def __init__(self, args: list[str], port: int, workdir: str) -> None:
        self.args = args
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(os.path.join(self.workdir, f"{self.port}.log"), "ab")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                self.args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        _wait(lambda: self._alive() and ping("127.0.0.1", self.port), f"port {self.port}", 20)

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            with open(os.path.join(self.workdir, f"{self.port}.log"), "rb") as f:
                tail = f.read()[-2000:]
            raise RuntimeError(
                f"{self.args[0]} on {self.port} exited: {tail.decode(errors='replace')}"
            )
        return True

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye to replicas or sentinels."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _server_args(binary: str, port: int, *extra: str) -> list[str]:
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        *extra,
    ]


def _client(port: int) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=5)


@contextmanager
def _connection(port: int) -> Iterator[Any]:
    client = _client(port)
    try:
        yield client
    finally:
        client.close()


def _ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports."""
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


class RedisClusterSet:
    """A local Redis Cluster: 3 masters + 3 replicas on loopback ports.

    Built from ``redis-server --cluster-enabled yes`` and
    ``redis-cli --cluster create … --cluster-replicas 1``; the cluster bus
    ports are chosen free too (``--cluster-port``).  A short node timeout
    makes a replica take over a killed master within a few seconds.
    """

    NODE_TIMEOUT_MS = 2000

    def __init__(self) -> None:
        binary = redis_binary()
        cli = shutil.which("redis-cli")
        if binary is None or cli is None:
            raise RuntimeError("redis-server and redis-cli are needed for a cluster")
        self.workdir = tempfile.mkdtemp(prefix="asgi-kit-cluster-")
        all_ports = _ports(12)
        self.ports, bus_ports = all_ports[:6], all_ports[6:]
        self.nodes = {
            port: _Process(
                _server_args(
                    binary,
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(bus),
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    str(self.NODE_TIMEOUT_MS),
                    "--dir",
                    self.workdir,
                ),
                port,
                self.workdir,
            )
            for port, bus in zip(self.ports, bus_ports, strict=True)
        }
        try:
            for node in self.nodes.values():
                node.start()
            subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{p}" for p in self.ports),
                    "--cluster-replicas",
                    "1",
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=60,
            )
            self.wait_healthy()
        except BaseException:
            self.close()
            raise
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def _cluster_ok(self, port: int) -> bool:
        with _connection(port) as client:
            info = client.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            return "cluster_state:ok" in text and "cluster_slots_ok:16384" in text

    def masters(self) -> list[int]:
        """Ports of the running masters."""
        out = []
        for port, node in self.nodes.items():
            if not node.running:
                continue
            with _connection(port) as client:
                if client.info("replication")["role"] == "master":
                    out.append(port)
        return out

    def wait_healthy(self, timeout: float = 60) -> None:
        """Every running node agrees: all slots served, 3 masters each with a replica."""

        def healthy() -> bool:
            running = [p for p, n in self.nodes.items() if n.running]
            if not all(self._cluster_ok(p) for p in running):
                return False
            masters = self.masters()
            if len(masters) != 3:
                return False
            for port in masters:
                with _connection(port) as client:
                    if client.info("replication")["connected_slaves"] < 1:
                        return False
            return True

        _wait(healthy, "a healthy Redis Cluster", timeout)

    def master_for(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        with _connection(self.masters()[0]) as client:
            slot = client.execute_command("CLUSTER", "KEYSLOT", key)
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= int(slot) <= int(end):
                    return int(master[1])
        raise RuntimeError(f"no master for {key!r}")

    def wait_replicated(self, port: int, timeout: float = 20) -> None:
        """Block until the replica of master ``port`` has every write (WAIT 1)."""
        with _connection(port) as client:
            _wait(lambda: int(client.execute_command("WAIT", 1, 1000)) >= 1, "replication", timeout)

    def kill(self, port: int) -> None:
        self.nodes[port].kill()

    def restart(self, port: int) -> None:
        """Bring a killed node back (it rejoins from its nodes.conf, as a replica)."""
        self.nodes[port].start()

    def flushall(self) -> None:
        for port in self.masters():
            with _connection(port) as client:
                client.flushall()

    def async_client(self) -> Any:
        """A ``redis.asyncio.RedisCluster`` the caller closes."""
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster(host="127.0.0.1", port=self.ports[0], socket_timeout=5)

    def script_flush(self) -> None:
        for port in self.masters():
            with _connection(port) as client:
                client.script_flush()

    def fail_over(self, key: str) -> int:
        """Crash the master serving ``key`` (after its writes reached the replica)."""
        port = self.master_for(key)
        self.wait_replicated(port)
        self.kill(port)
        return port

    def wait_promoted(self, old: int, timeout: float = 60) -> None:
        """Wait until a replica serves the killed master's slots."""

        def promoted() -> bool:
            running = [p for p, n in self.nodes.items() if n.running]
            return len(self.masters()) == 3 and all(self._cluster_ok(p) for p in running)

        _wait(promoted, "a replica promoted to master", timeout)

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class SentinelSet:
    """1 master, 1 replica and 3 ``redis-sentinel`` processes on loopback ports.

    The sentinels agree a master is down after ``DOWN_AFTER_MS`` and promote
    the replica; quorum 2 of 3.
    """

    SERVICE = "asgikit"
    DOWN_AFTER_MS = 1000

    def __init__(self) -> None:
        binary = redis_binary()
        sentinel = shutil.which("redis-sentinel")
        if binary is None or sentinel is None:
            raise RuntimeError("redis-server and redis-sentinel are needed for Sentinel")
        self.workdir = tempfile.mkdtemp(prefix="asgi-kit-sentinel-")
        ports = _ports(5)
        master, replica, *self.sentinel_ports = ports
        self.servers = {
            master: _Process(
                _server_args(binary, master, "--dir", self.workdir), master, self.workdir
            ),
            replica: _Process(
                _server_args(
                    binary,
                    replica,
                    "--dir",
                    self.workdir,
                    "--replicaof",
                    "127.0.0.1",
                    str(master),
                ),
                replica,
                self.workdir,
            ),
        }
        self.sentinels = []
        for port in self.sentinel_ports:
            conf = os.path.join(self.workdir, f"sentinel-{port}.conf")
            with open(conf, "w") as f:  # sentinel rewrites its own config file
                f.write(
                    f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.workdir}\n"
                    f"sentinel monitor {self.SERVICE} 127.0.0.1 {master} 2\n"
                    f"sentinel down-after-milliseconds {self.SERVICE} {self.DOWN_AFTER_MS}\n"
                    f"sentinel failover-timeout {self.SERVICE} 10000\n"
                    f"sentinel parallel-syncs {self.SERVICE} 1\n"
                )
            self.sentinels.append(_Process([sentinel, conf], port, self.workdir))
        try:
            for proc in [*self.servers.values(), *self.sentinels]:
                proc.start()
            self.wait_healthy()
        except BaseException:
            self.close()
            raise
        self.url = (
            "redis+sentinel://"
            + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
            + f"/{self.SERVICE}"
        )

    def master(self) -> int:
        """The port the sentinels name as master."""
        with _connection(self.sentinel_ports[0]) as client:
            _host, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE
            )
            return int(port)

    def wait_healthy(self, timeout: float = 60) -> None:
        """Every sentinel knows the master, its replica and the other sentinels."""

        def healthy() -> bool:
            master = self.master()
            if not self.servers[master].running:
                return False
            for port in self.sentinel_ports:
                with _connection(port) as client:
                    state = client.sentinel_master(self.SERVICE)  # parsed by redis-py
                    if int(state["port"]) != master or int(state["num-slaves"]) < 1:
                        return False
                    if int(state["num-other-sentinels"]) < 2:
                        return False
                    if state.get("is_sdown") or state.get("is_odown"):
                        return False
            with _connection(master) as client:
                replication = client.info("replication")
                return bool(
                    replication["role"] == "master"
                    and replication["connected_slaves"] >= 1
                    and replication["slave0"]["state"] == "online"
                )

        _wait(healthy, "a healthy Sentinel set-up", timeout)

    def wait_replicated(self, timeout: float = 20) -> None:
        with _connection(self.master()) as client:
            _wait(lambda: int(client.execute_command("WAIT", 1, 1000)) >= 1, "replication", timeout)

    def async_client(self) -> Any:
        """A Sentinel ``master_for()`` client (``redis.asyncio``) the caller closes."""
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel([("127.0.0.1", p) for p in self.sentinel_ports], socket_timeout=5)
        return sentinel.master_for(self.SERVICE, socket_timeout=5)

    def script_flush(self) -> None:
        with _connection(self.master()) as client:
            client.script_flush()

    def fail_over(self, key: str) -> int:
        """Crash the master (after its writes reached the replica)."""
        self.wait_replicated()
        port = self.master()
        self.servers[port].kill()
        return port

    def wait_promoted(self, old: int, timeout: float = 60) -> None:
        """Wait until the sentinels name a new master, and it accepts writes."""
        _wait(lambda: self.master() != old, "a promoted replica", timeout)

        def writable() -> bool:
            with _connection(self.master()) as client:
                return bool(client.info("replication")["role"] == "master")

        _wait(writable, "the new master", timeout)

    def restart(self, port: int) -> None:
        """Bring the old master back; the sentinels turn it into a replica."""
        self.servers[port].start()

    def flushall(self) -> None:
        with _connection(self.master()) as client:
            client.flushall()

    def close(self) -> None:
        for proc in [*self.sentinels, *self.servers.values()]:
            proc.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
