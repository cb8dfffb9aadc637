from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import agentlog
from agentlog.config import build_config
from agentlog.migrations import current_revision, head_revision, upgrade
from agentlog.schema import TABLE_NAME, VERSION_TABLE
from agentlog.serialize import to_wire
from agentlog.store import CHUNK_SIZE, SchemaMissing, Store, get_store


def wires(count: int, agent: str = "bot") -> list[dict[str, object]]:
    config = build_config()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [
        to_wire(
            agentlog.Execution(
                agent=agent, status="success", started_at=start + timedelta(seconds=i)
            ),
            config,
        )
        for i in range(count)
    ]


def test_insert_many_is_idempotent(database_url: str) -> None:
    store = get_store(database_url)
    batch = wires(3)
    assert store.insert_many(batch) == 3
    assert store.insert_many(batch) == 0
    assert store.insert_many([*batch, *wires(2)]) == 2
    assert store.count() == 5


def test_a_batch_larger_than_a_chunk_is_one_transaction(database_url: str) -> None:
    store = get_store(database_url)
    batch = wires(CHUNK_SIZE + 10)
    statements: list[str] = []

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def count_inserts(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT"):
            statements.append(statement)
            if len(statements) == 2:
                raise sa.exc.OperationalError(statement, {}, Exception("connection lost"))

    with pytest.raises(sa.exc.OperationalError):
        store.insert_many(batch)
    sa.event.remove(store.engine, "before_cursor_execute", count_inserts)
    # the first chunk was rolled back with the failed second one
    assert store.count() == 0
    assert store.insert_many(batch) == CHUNK_SIZE + 10


def test_bad_records_are_left_out_and_the_rest_stored(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = get_store(database_url)
    good = wires(2)
    bad = [
        {"agent": "x"},  # no id
        {**good[0], "id": "not-a-uuid"},
        {**good[0], "id": str(uuid.uuid4()), "started_at": "yesterday"},
        {**good[0], "id": str(uuid.uuid4()), "colour": "red"},
        "not a dict",
    ]
    assert store.insert_many([bad[0], good[0], *bad[1:], good[1]]) == 2
    assert agentlog.stats()["dropped"] == 5
    for reason in ("id is missing", "not a UUID", "ISO 8601", "colour", "expected a dict"):
        assert reason in caplog.text


def test_reads_newest_first_with_filters(database_url: str) -> None:
    store = get_store(database_url)
    store.insert_many(wires(3, agent="a") + wires(2, agent="b"))
    newest = store.executions(limit=2)
    assert [e.started_at for e in newest] == sorted([e.started_at for e in newest], reverse=True)
    assert {e.agent for e in store.executions(agent="b")} == {"b"}
    assert len(store.executions(agent="a", status="success")) == 3
    assert store.executions(status="error") == []


def test_round_trip_keeps_types(database_url: str) -> None:
    agentlog.configure(mode="sync", database_url=database_url)
    with agentlog.track("bot", model="gpt-4o", metadata={"k": [1, 2.5, None, True]}) as run:
        run.usage(input_tokens=10, output_tokens=5)
    [stored] = agentlog.executions()
    assert stored.id == run.id and isinstance(stored.id, uuid.UUID)
    assert stored.started_at is not None and stored.started_at.tzinfo is not None
    assert stored.started_at == run.started_at
    assert stored.metadata == {"k": [1, 2.5, None, True]}
    assert stored.input_tokens == 10 and stored.total_tokens == 15


def test_postgres_uses_jsonb_and_indexes(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    inspector = sa.inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns(TABLE_NAME)}
    assert type(columns["parameters"]["type"]).__name__ == "JSONB"
    assert type(columns["id"]["type"]).__name__ == "UUID"
    indexed = {tuple(i["column_names"]) for i in inspector.get_indexes(TABLE_NAME)}
    for wanted in [
        ("agent", "started_at"),
        ("status", "started_at"),
        ("model", "status"),
        ("trace_id",),
        ("request_id",),
        ("tenant_id",),
        ("parent_id",),
    ]:
        assert wanted in indexed
    engine.dispose()


def test_migrate_an_empty_postgres(empty_postgres_url: str) -> None:
    store = Store(empty_postgres_url)
    with pytest.raises(SchemaMissing, match="agentlog migrate"):
        store.insert_many(wires(1))
    assert current_revision(store.engine) is None
    upgrade(store.engine)
    assert current_revision(store.engine) == head_revision()
    upgrade(store.engine)  # a second run is a no-op
    assert store.insert_many(wires(1)) == 1
    tables = sa.inspect(store.engine).get_table_names()
    assert VERSION_TABLE in tables and "alembic_version" not in tables
    store.dispose()


def test_sqlite_is_created_on_first_use(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    agentlog.configure(mode="sync", database_url=url)
    with agentlog.track("bot"):
        pass
    assert len(agentlog.executions()) == 1
    assert current_revision(get_store(url).engine) == head_revision()


def test_schema_metadata_matches_the_migration(empty_postgres_url: str) -> None:
    """Apps that add agentlog.schema.metadata to their own migrations get the same table."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from agentlog.schema import metadata

    store = Store(empty_postgres_url)
    upgrade(store.engine)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        diff = [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in str(d)]
    store.dispose()
    assert diff == []
