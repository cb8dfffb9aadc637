from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import agentlog
from agentlog.config import build_config
from agentlog.migrations import current_revision, head_revision, upgrade
from agentlog.schema import TABLE_NAME, VERSION_TABLE
from agentlog.schema import executions as table
from agentlog.serialize import ROW_COLUMNS, to_wire
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


def wire(**fields: Any) -> dict[str, Any]:
    """A wire record naming every column: None unless given."""
    record: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    record.update(
        id=str(uuid.uuid4()), agent="bot", status="success", started_at="2026-01-01T00:00:00+00:00"
    )
    record.update(fields)
    return record


def test_duplicate_ids_are_counted_once_and_the_first_copy_wins(database_url: str) -> None:
    store = get_store(database_url)
    a, b, c, d = (wire(agent=name) for name in "abcd")
    assert store.insert_many([a, b, {**a, "agent": "a again"}, c, b]) == 3
    assert store.insert_many([c, d, d, {**a, "agent": "a later"}]) == 1
    assert sorted(e.agent for e in store.executions()) == ["a", "b", "c", "d"]


def test_duplicates_across_the_chunks_of_one_batch(database_url: str) -> None:
    store = get_store(database_url)
    batch = wires(CHUNK_SIZE + 5)
    # the repeated first records land in the second chunk
    assert store.insert_many([*batch, *batch[:7]]) == CHUNK_SIZE + 5
    assert store.insert_many([*batch[-3:], *wires(4, agent="new")]) == 4
    assert store.count() == CHUNK_SIZE + 9


FULL = {
    "model": "gpt-4o",
    "provider": "openai",
    "completed_at": "2026-01-01T00:00:01.5+00:00",
    "duration_ms": 1500.25,
    "input_tokens": 812,
    "output_tokens": 95,
    "total_tokens": 907,
    "cached_tokens": 2**31 - 1,
    "input_cost": "0.00203",
    "output_cost": "0.00095",
    "total_cost": "0.00298",
    "finish_reason": "stop",
    "error_class": "ValueError",
    "error_message": "boom",
    "parameters": {"temperature": 0.2, "stop": None, "stream": False},
    "system_prompt": "be brief",
    "prompt": [{"role": "user", "content": "hi"}],
    "response": "a bare JSON string",
    "tool_calls": [],
    "metadata": {"k": [1, 2.5, None, True]},
    "trace_id": "trace-1",
    "request_id": "req-1",
    "parent_id": str(uuid.uuid4()),
    "tenant_id": "acme",
}


def test_every_nullable_column_can_be_null(database_url: str) -> None:
    store = get_store(database_url)
    full, empty = wire(**FULL), wire()
    # NULLs next to values in one statement, and columns that are NULL in every row
    assert store.insert_many([full, empty]) == 2
    assert store.insert_many([wire(), wire()]) == 2
    [stored] = store.executions(ids=[uuid.UUID(empty["id"])])
    for name in FULL:
        assert getattr(stored, name) == ({} if name == "metadata" else None), name
    [stored] = store.executions(ids=[uuid.UUID(full["id"])])
    assert stored.duration_ms == 1500.25 and stored.cached_tokens == 2**31 - 1
    assert stored.total_cost == Decimal("0.00298") and str(stored.parent_id) == FULL["parent_id"]
    for name in ("parameters", "prompt", "response", "tool_calls", "metadata"):
        assert getattr(stored, name) == FULL[name], name
    if store.dialect == "postgresql":  # SQL NULL, not a JSON null
        nullable = [c for c in table.c if c.nullable and c.name != "logged_at"]
        query = sa.select(sa.func.count()).where(
            table.c.id == uuid.UUID(empty["id"]), *[c.is_(None) for c in nullable]
        )
        with store.engine.connect() as connection:
            assert connection.execute(query).scalar_one() == 1


def test_unicode_round_trips_and_nul_is_replaced(database_url: str) -> None:
    store = get_store(database_url)
    text = "naïve café, 漢字, ελληνικά, 🙂👩‍💻, e\u0301, \u202eRTL\u202c, \\ \" ' \t\n{},"
    execution = agentlog.Execution(
        agent="bøt-🙂",
        status="error",
        started_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        error_message=f"nul\x00here {text}",
        system_prompt=f"{text}\x00",
        prompt=[{"role": "user", "content": f"\x00 {text}", text: text}],
        metadata={"ключ": text},
    )
    record = to_wire(execution, build_config())
    assert "\x00" not in record["error_message"] and "\ufffd" in record["error_message"]
    assert store.insert_many([record]) == 1
    [stored] = store.executions()
    assert stored.agent == "bøt-🙂"
    assert stored.error_message == f"nul\ufffdhere {text}"
    assert stored.system_prompt == f"{text}\ufffd"
    assert stored.prompt == [{"role": "user", "content": f"\ufffd {text}", text: text}]
    assert stored.metadata == {"ключ": text}


def test_costs_keep_every_digit(postgres_url: str) -> None:
    store = get_store(postgres_url)
    costs = {"input_cost": "0.0000000001", "output_cost": "1234567890.0123456789"}
    records = [wire(**costs, total_cost="1E-7"), wire(total_cost=Decimal("9999999999.9999999999"))]
    assert store.insert_many(records) == 2
    first, second = (store.executions(ids=[uuid.UUID(r["id"])])[0] for r in records)
    assert str(first.input_cost) == "1E-10"
    assert str(first.output_cost) == "1234567890.0123456789"
    assert first.total_cost == Decimal("0.0000001")
    assert second.total_cost == Decimal("9999999999.9999999999")


def test_large_json_values(database_url: str) -> None:
    store = get_store(database_url)
    nested: Any = "leaf"
    for depth in range(100):
        nested = {f"level{depth}": [nested, depth]}
    big = {"text": "x" * 1_000_000, "items": list(range(20_000)), "nested": nested}
    record = wire(prompt=big, response=[big["items"], "é" * 100_000], metadata={"k": nested})
    assert store.insert_many([record, wire()]) == 2
    [stored] = store.executions(ids=[uuid.UUID(record["id"])])
    assert stored.prompt == big
    assert stored.response == [big["items"], "é" * 100_000]
    assert stored.metadata == {"k": nested}


def test_timestamps_keep_their_instant_in_any_time_zone(database_url: str) -> None:
    store = get_store(database_url)
    if store.dialect == "postgresql":

        @sa.event.listens_for(store.engine, "connect")
        def session_time_zone(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("SET TIME ZONE 'America/St_Johns'")  # UTC-03:30
            dbapi_connection.commit()

    start = datetime(
        2026, 3, 29, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))
    )
    end = datetime(2026, 3, 28, 20, 0, 16, tzinfo=timezone(timedelta(hours=-8)))
    aware = wire(started_at=start.isoformat(), completed_at=end.isoformat())
    naive = wire(started_at="2026-01-01T12:00:00")  # no offset: read as UTC
    assert store.insert_many([aware, naive]) == 2
    [stored] = store.executions(ids=[uuid.UUID(aware["id"])])
    assert stored.started_at == start and stored.completed_at == end
    assert stored.started_at is not None and stored.started_at.utcoffset() == timedelta(0)
    [stored] = store.executions(ids=[uuid.UUID(naive["id"])])
    assert stored.started_at == datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def test_postgres_cuts_too_long_strings_to_their_column(postgres_url: str) -> None:
    store = get_store(postgres_url)
    assert (
        store.insert_many([wire(model="m" * 300, status="s" * 20, error_message="e" * 9000)]) == 1
    )
    [stored] = store.executions()
    assert (stored.model, stored.status) == ("m" * 255, "s" * 16)
    assert stored.error_message == "e" * 9000


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

    def bad(**fields: Any) -> dict[str, Any]:
        return {**good[0], "id": str(uuid.uuid4()), **fields}

    # Each well-formed for the worker's JSON, but each would fail the insert
    # of the whole batch (or store nonsense) if it reached the server.
    rejected = {
        "id is missing": {"agent": "x"},
        "id='not-a-uuid' is not a UUID": {**good[0], "id": "not-a-uuid"},
        "parent_id=42 is not a UUID": bad(parent_id=42),
        "agent='' must be a non-empty string": bad(agent=""),
        "status=None must be a non-empty string": bad(status=None),
        "started_at='yesterday' is not an ISO 8601 timestamp": bad(started_at="yesterday"),
        "started_at is missing": bad(started_at=None),
        "unknown field(s): colour": bad(colour="red"),
        "expected a dict of execution fields, got str": "not a dict",
        "input_tokens=1099511627776 is out of range": bad(input_tokens=2**40),
        "output_tokens='95' is not an integer": bad(output_tokens="95"),
        "total_cost='lots' is not a number": bad(total_cost="lots"),
        "input_cost='1E+10' is out of range for NUMERIC(20, 10)": bad(input_cost="1E+10"),
        "output_cost='NaN' is out of range": bad(output_cost="NaN"),
        "duration_ms='slow' is not a number": bad(duration_ms="slow"),
    }
    records = [good[0], *rejected.values(), good[1]]
    assert store.insert_many(records) == 2
    assert agentlog.stats()["dropped"] == len(rejected)
    for reason in rejected:
        assert reason in caplog.text
    assert {e.id for e in store.executions()} == {uuid.UUID(w["id"]) for w in good}


def test_values_the_worker_can_normalize_are_stored(database_url: str) -> None:
    """JSON from another producer: other id spellings, numbers as text, NUL in text."""
    store = get_store(database_url)
    identifier, parent = uuid.uuid4(), uuid.uuid4()
    record = wire(
        id=f"{{{str(identifier).upper()}}}",
        parent_id=parent.hex,
        agent="bot\x00",
        error_message="a\x00b",
        input_tokens=True,
        duration_ms=12,
        total_cost=0.25,
        input_cost="1E-7",
        output_cost="9999999999.9999999999",
    )
    assert store.insert_many([record]) == 1
    [stored] = store.executions()
    assert (stored.id, stored.parent_id) == (identifier, parent)
    assert (stored.agent, stored.error_message) == ("bot\ufffd", "a\ufffdb")
    assert (stored.input_tokens, stored.duration_ms) == (1, 12.0)
    assert stored.total_cost == Decimal("0.25")
    assert stored.input_cost == Decimal("0.0000001")
    if store.dialect == "postgresql":  # SQLite keeps costs as floats
        assert stored.output_cost == Decimal("9999999999.9999999999")


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
