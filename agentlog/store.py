"""The one writer: sync, fallback, rq job and spool replay all end in ``Store.insert_many``."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from agentlog import counters
from agentlog.execution import Execution
from agentlog.schema import TABLE_NAME
from agentlog.schema import executions as table
from agentlog.serialize import (
    JSON_FIELDS,
    ROW_COLUMNS,
    UUID_FIELDS,
    Columns,
    Wire,
    row_to_execution,
    to_columns,
)

logger = logging.getLogger("agentlog")

# Rows per INSERT statement; a batch larger than this still commits as one
# transaction. On PostgreSQL the statements of a batch go out in pipeline mode,
# so the worker converts a chunk while the server inserts the one before:
# at 125 rows a 500-row batch costs ~30% less time per row than one statement
# (92 -> 65 µs a row, /tmp/exp/pipe2.py in the commit that set it).
CHUNK_SIZE = 125


_SQLITE_INSERT = (
    sqlite_insert(table).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
)
# PostgreSQL: one array parameter per column, sent in binary (psycopg's %b).
# The unnest() calls in the select list walk the arrays in lockstep, one row
# per index, in order (a shorter or NULL array gives NULLs). The server gets
# timestamps and numbers ready-made and parses only the JSON; that costs it a
# third less CPU per row at 500 rows than one jsonb document of the chunk
# through jsonb_populate_recordset, which converted every value from text
# (benchmarks/probes.py, part D). The casts name the column types, so a too
# long string is cut to fit, as to_wire does, and ids sent as text become uuids
# (the server parses them several times faster than uuid.UUID does here).
_PG_DIALECT = PGDialect()  # type: ignore[no-untyped-call]
_PG_TYPES = {column.name: column.type.compile(dialect=_PG_DIALECT) for column in table.c}
_PG_INSERT = (
    f"INSERT INTO {TABLE_NAME} ({', '.join(ROW_COLUMNS)}) SELECT "
    + ", ".join(f"unnest(%({name})b::{_PG_TYPES[name]}[])" for name in ROW_COLUMNS)
    + " ON CONFLICT (id) DO NOTHING"
)


def _json_text(value: Any) -> str:
    # orjson writes UUIDs and aware datetimes as PostgreSQL reads them; the rest as str.
    return orjson.dumps(value, default=str).decode()


# psycopg dumps a list only if its items share one type: JSON goes as text for
# the jsonb cast. The other columns are sent as to_columns leaves them (costs
# as text for the numeric cast: exact, and several times cheaper for psycopg
# than binary numeric).
_PG_CONVERT: dict[str, Callable[[Any], Any]] = dict.fromkeys(JSON_FIELDS, _json_text)


def _pg_arrays(columns: Columns) -> dict[str, list[Any] | None]:
    arrays: dict[str, list[Any] | None] = {}
    for name, values in columns.items():
        convert = _PG_CONVERT.get(name)
        if values.count(None) == len(values):
            arrays[name] = None  # one NULL, cheaper than a list: unnest() pads it
        elif convert is None:
            arrays[name] = values
        else:
            arrays[name] = [None if v is None else convert(v) for v in values]
    return arrays


def _sqlite_rows(columns: Columns) -> list[dict[str, Any]]:
    ids = {
        name: [None if v is None else uuid.UUID(v) for v in columns[name]] for name in UUID_FIELDS
    }
    columns = {**columns, **ids}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _valid_chunks(records: Iterable[Wire]) -> Iterator[Columns]:
    """Column values of the records, CHUNK_SIZE at a time, converted as they are consumed.

    A record that cannot be stored is counted, logged with the reason and left out.
    """
    remaining = iter(records)
    while chunk := list(itertools.islice(remaining, CHUNK_SIZE)):
        columns, rejected = to_columns(chunk)
        for reason in rejected.values():
            counters.incr("dropped")
            counters.incr("errors")
            logger.error("agentlog: dropped a bad record (%s)", reason)
        if columns["id"]:
            yield columns


def _insert_pipelined(connection: Connection, chunks: Iterable[Columns]) -> int:
    # In psycopg's pipeline mode each statement is sent without waiting for the
    # server, so the next chunk is converted (the generator) while it inserts.
    # The statements still go through SQLAlchemy and its cursor events.
    results = []
    with connection.connection.driver_connection.pipeline():  # type: ignore[union-attr]
        for chunk in chunks:
            results.append(connection.exec_driver_sql(_PG_INSERT, _pg_arrays(chunk)))
    # Known once the pipeline has synced: the rows each INSERT ... ON CONFLICT
    # DO NOTHING added (SQLAlchemy read its rowcount before they were).
    return sum(result.context.cursor.rowcount for result in results)


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
        chunks = _valid_chunks(records)
        first = next(chunks, None)
        if first is None:
            return 0
        with self._lock:
            self._ensure_schema()
            with self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    return _insert_pipelined(connection, itertools.chain([first], chunks))
                return sum(
                    len(connection.execute(_SQLITE_INSERT, _sqlite_rows(chunk)).all())
                    for chunk in itertools.chain([first], chunks)
                )

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
