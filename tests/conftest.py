"""Fixtures for agentlog's own tests: real servers, isolated library state.

Real PostgreSQL and Redis are started by the test run itself (never assumed
to be running); a missing binary is an error, not a skip.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import agentlog
from agentlog import runtime
from agentlog.migrations import upgrade
from agentlog.store import get_store

from .support.postgres import PostgresServer

_database_numbers = itertools.count()


@pytest.fixture(autouse=True)
def _isolate_agentlog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from a freshly imported library and its own spool directory."""
    for var in ("AGENTLOG_MODE", "AGENTLOG_DATABASE_URL", "AGENTLOG_REDIS_URL", "AGENTLOG_QUEUE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AGENTLOG_SPOOL_DIR", str(tmp_path / "spool"))
    runtime.reset_process_state()
    yield
    runtime.reset_process_state()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    template = server.create_database("agentlog_template")
    upgrade(get_store(template).engine)
    get_store(template).dispose()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, migrated PostgreSQL database for this test."""
    import psycopg

    name = f"agentlog_test_{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(
        f"host=127.0.0.1 port={postgres_server.port} user={postgres_server.user} dbname=postgres",
        autocommit=True,
    ) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE agentlog_template')
    return postgres_server.url(name)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> str:
    """A PostgreSQL database without agentlog's schema (to test migrate and its absence)."""
    return postgres_server.create_database(
        f"agentlog_empty_{os.getpid()}_{next(_database_numbers)}"
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'agentlog.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs against SQLite and against a real PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def redis_url(redis_proc: object) -> str:
    """A real redis-server (pytest-redis, started from the binary), emptied for this test."""
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"  # type: ignore[attr-defined]
    redis.Redis.from_url(url).flushall()
    return url


@pytest.fixture
def dead_redis_url() -> str:
    """An address where nothing listens: connections are refused at once."""
    from .support.postgres import free_port

    return f"redis://127.0.0.1:{free_port()}/0"


__all__ = ["agentlog"]
