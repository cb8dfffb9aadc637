"""A throwaway PostgreSQL server for the test run, started from the local binaries.

pytest-postgresql's process fixture cannot run as root (initdb refuses, and
its data directory lives under pytest's root-only temp dir), and CI runs as
root. This starts the same binaries as the ``postgres`` user in that case.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/bin")


def _pg_bin(name: str) -> str:
    for directory in PG_BIN_CANDIDATES:
        path = Path(directory) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL binary {name!r} not found (looked in {', '.join(PG_BIN_CANDIDATES)} "
            "and PATH); install PostgreSQL 15 or set AGENTLOG_TEST_POSTGRES_URL"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="agentlog-pg-"))
        self.datadir = self.directory / "data"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            shutil.chown(self.directory, user="postgres")
        self._prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._prefix, *args], check=True, capture_output=True, timeout=120, cwd="/"
        )

    def start(self) -> PostgresServer:
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            options,
            "-w",
            "-l",
            str(self.directory / "log"),
            "start",
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
