"""Real servers for the benchmark, all on this machine and all loopback.

PostgreSQL comes from the test suite's ``PostgresServer`` (a throwaway
cluster); redis-server is started here on a free port; the two unreachable
Redis addresses are made locally: a port nobody listens on (connection
refused) and a listener whose accept queue is full and never drained, so the
kernel drops every further SYN (connect hangs until the client's timeout: a
blackhole, without iptables and without sending anything off this machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.postgres import PostgresServer, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="agentlog-bench-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def refused_redis_url() -> str:
    """A loopback port with no listener: connect() fails at once with ECONNREFUSED."""
    return f"redis://127.0.0.1:{free_port()}/0"


class Blackhole:
    """A loopback address that swallows connection attempts.

    A listener with ``backlog=0`` whose single accept-queue slot is taken by
    a connection we make ourselves and never accept: from then on the kernel
    drops every SYN to the port (net.ipv4.tcp_abort_on_overflow=0, the
    default), so a client's connect() hangs until its own timeout, exactly
    as with a firewall DROP rule. Nothing leaves the machine.
    """

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = int(self.listener.getsockname()[1])
        self._fillers: list[socket.socket] = []
        for _ in range(4):  # fill the queue (backlog 0 admits one; more is harmless)
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)
        time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def verify(self, timeout: float = 0.3) -> float:
        """Seconds a fresh connect() hung before timing out (raises if it connected)."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(timeout)
        start = time.perf_counter()
        try:
            probe.connect(("127.0.0.1", self.port))
        except TimeoutError:
            return time.perf_counter() - start
        finally:
            probe.close()
        raise RuntimeError("the blackhole accepted a connection")

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self.listener.close()


def start_postgres() -> PostgresServer:
    return PostgresServer().start()


def postmaster_pid(server: PostgresServer) -> int:
    return int((server.datadir / "postmaster.pid").read_text().split()[0])


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime are fields 14 and 15 (1-based); after the ")" split, index 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


class CpuMeter:
    """CPU seconds used by PostgreSQL (postmaster and backends) and redis-server.

    Backends that exit during a measurement take their CPU time with them, so
    read this around measurements whose connections stay open.
    """

    def __init__(self, postgres: PostgresServer, redis_server: RedisServer) -> None:
        self.postmaster = postmaster_pid(postgres)
        self.redis_pid = redis_server.process.pid if redis_server.process else 0

    def postgres(self) -> float:
        pids = [self.postmaster, *_children(self.postmaster)]
        return sum(_cpu_seconds(pid) for pid in pids)

    def redis(self) -> float:
        return _cpu_seconds(self.redis_pid)

    def sample(self) -> tuple[float, float]:
        return self.postgres(), self.redis()
