"""The one writer: sync, fallback, rq job and spool replay all end in ``Store.insert_many``."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from agentlog import counters
from agentlog.execution import Execution
from agentlog.schema import TABLE_NAME
from agentlog.schema import executions as table
from agentlog.serialize import ROW_COLUMNS, BadRecord, Wire, row_to_execution, to_row

logger = logging.getLogger("agentlog")

# Rows per INSERT statement; a batch larger than this still commits as one transaction.
CHUNK_SIZE = 500


_SQLITE_INSERT = (
    sqlite_insert(table).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
)
# PostgreSQL: the chunk travels as one JSON parameter. A multi-row VALUES list
# has thousands of placeholders, which psycopg re-parses on every execution
# (~300 µs a row); one jsonb argument costs a fraction of that.
_PG_INSERT = text(
    f"INSERT INTO {TABLE_NAME} ({', '.join(ROW_COLUMNS)}) "
    f"SELECT {', '.join(ROW_COLUMNS)} "
    f"FROM jsonb_populate_recordset(NULL::{TABLE_NAME}, CAST(:rows AS jsonb)) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)


def _pg_json(rows: list[dict[str, Any]]) -> str:
    # orjson writes UUIDs and aware datetimes as PostgreSQL reads them; Decimal as text.
    return orjson.dumps(rows, default=str).decode()


class SchemaMissing(RuntimeError):
    """The table does not exist in the target database."""


def _is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if _is_memory_sqlite(url):
            # One shared connection, or every thread would see its own empty database.
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not _is_memory_sqlite(url):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=4,
        connect_args={"connect_timeout": 5},
    )


class Store:
    """Writes and reads ``agentlog_executions`` in one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self.dialect = self.engine.dialect.name
        self._lock = self._new_lock()
        self._schema_checked = False

    def _new_lock(self) -> AbstractContextManager[Any]:
        # The one shared connection of an in-memory SQLite is not safe to use
        # from two threads at once; pooled databases need no lock.
        return threading.Lock() if _is_memory_sqlite(self.url) else contextlib.nullcontext()

    def reset_lock(self) -> None:
        self._lock = self._new_lock()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def prepare(self) -> None:
        """Check (SQLite: create) the schema now rather than at the first write."""
        with self._lock:
            self._ensure_schema()

    def _ensure_schema(self) -> None:
        if self._schema_checked:
            return
        if self.dialect == "sqlite":
            # The embedded default needs no setup step: create (or upgrade) it in place.
            from agentlog.migrations import upgrade

            upgrade(self.engine)
        elif not inspect(self.engine).has_table(TABLE_NAME):
            raise SchemaMissing(
                f"table {TABLE_NAME} does not exist in {self!r}: run `agentlog migrate`"
            )
        self._schema_checked = True

    def insert_many(self, records: Iterable[Wire]) -> int:
        """Insert wire records in one transaction, skipping ids already stored.

        Returns how many rows were new. Records that cannot be stored are
        logged with the reason and left out; the others are still written.
        """
        rows = []
        for record in records:
            try:
                rows.append(to_row(record))
            except BadRecord as exc:
                counters.incr("dropped")
                counters.incr("errors")
                logger.error("agentlog: dropped a bad record (%s)", exc)
        if not rows:
            return 0
        inserted = 0
        with self._lock:
            self._ensure_schema()
            with self.engine.begin() as connection:
                for start in range(0, len(rows), CHUNK_SIZE):
                    chunk = rows[start : start + CHUNK_SIZE]
                    if self.dialect == "postgresql":
                        result = connection.execute(_PG_INSERT, {"rows": _pg_json(chunk)})
                    else:
                        result = connection.execute(_SQLITE_INSERT, chunk)
                    inserted += len(result.all())
        return inserted

    def executions(
        self,
        *,
        agent: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        ids: Sequence[Any] | None = None,
    ) -> list[Execution]:
        """Stored executions, newest first."""
        query = select(table)
        if agent is not None:
            query = query.where(table.c.agent == agent)
        if status is not None:
            query = query.where(table.c.status == status)
        if ids is not None:
            query = query.where(table.c.id.in_(list(ids)))
        query = query.order_by(table.c.started_at.desc(), table.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._lock:
            self._ensure_schema()
            with self.engine.connect() as connection:
                return [row_to_execution(row._mapping) for row in connection.execute(query)]

    def count(self) -> int:
        self.prepare()
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()
_stores_pid = os.getpid()


def get_store(url: str) -> Store:
    """The process's ``Store`` for ``url`` (one engine and pool per database)."""
    global _stores_pid
    with _stores_lock:
        if _stores_pid != os.getpid():
            _forget_stores_after_fork()
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = Store(url)
        return store


def _forget_stores_after_fork() -> None:
    global _stores_pid, _stores_lock
    # Another thread may have held the lock at the fork; the child has no such thread.
    _stores_lock = threading.Lock()
    for store in _stores.values():
        # The parent's pooled connections belong to the parent: drop them unclosed,
        # but keep the engine and what is known of the schema. A forking rq worker
        # runs each job in a fresh child; re-checking the schema there per job
        # cost more than the insert.
        store.engine.dispose(close=False)
        store.reset_lock()
    _stores_pid = os.getpid()


def close_stores() -> None:
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()


os.register_at_fork(after_in_child=_forget_stores_after_fork)
