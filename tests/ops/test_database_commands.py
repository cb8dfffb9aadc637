"""migrate, purge and replay against a real PostgreSQL (and the SQLite default)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from agentlog.config import build_config
from agentlog.migrations import current_revision, head_revision
from agentlog.spool import get_spool
from agentlog.store import get_store

from .conftest import days_ago, invoke, wire


def count_rows(url: str, where: str = "true") -> int:
    with get_store(url).engine.connect() as connection:
        return int(
            connection.execute(
                sa.text(f"select count(*) from agentlog_executions where {where}")
            ).scalar_one()
        )


def test_migrate_creates_the_schema_in_an_empty_postgresql(empty_postgres_url: str) -> None:
    engine = get_store(empty_postgres_url).engine
    assert not sa.inspect(engine).has_table("agentlog_executions")

    result = invoke("migrate", "--json", "--database-url", empty_postgres_url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "database_url": json.loads(result.stdout)["database_url"],
        "before": None,
        "revision": head_revision(),
    }
    assert sa.inspect(engine).has_table("agentlog_executions")
    assert current_revision(engine) == head_revision()
    status = json.loads(invoke("status", "--json", "--database-url", empty_postgres_url).stdout)
    assert status["database"]["revision"] == head_revision()
    assert status["database"]["rows_last_hour"] == 0


def test_reads_on_a_database_without_the_schema_say_run_migrate(empty_postgres_url: str) -> None:
    result = invoke("purge", "--older-than", "30d", "--database-url", empty_postgres_url)
    assert result.exit_code == 1
    assert "run `agentlog migrate`" in result.stderr
    doctor = json.loads(invoke("doctor", "--json", "--database-url", empty_postgres_url).stdout)
    schema = {c["name"]: c for c in doctor["checks"]}["schema current"]
    assert schema["status"] == "fail"
    assert schema["fix"].startswith("agentlog migrate --database-url postgresql+psycopg://")


def test_purge_dry_run_counts_without_deleting_then_purge_deletes_in_batches(
    postgres_url: str,
) -> None:
    config = build_config(database_url=postgres_url)
    store = get_store(postgres_url)
    store.insert_many(
        [wire(config, started_at=days_ago(40)) for _ in range(7)]
        + [wire(config, started_at=days_ago(45), status="error") for _ in range(2)]
        + [wire(config, started_at=days_ago(31), status="timeout")]
        + [wire(config, started_at=days_ago(2)) for _ in range(4)]
    )
    url = ("--database-url", postgres_url)

    dry = invoke("purge", "--older-than", "30d", "--dry-run", "--json", *url)
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert (report["matched"], report["deleted"], report["dry_run"]) == (10, 0, True)
    assert count_rows(postgres_url) == 14
    human = invoke("purge", "--older-than", "30d", "--dry-run", *url)
    assert "dry run: would delete 10 executions started before" in human.stdout
    assert count_rows(postgres_url) == 14

    kept = invoke("purge", "--older-than", "30d", "--keep-errors", "--batch-size", "3", *url)
    assert kept.exit_code == 0, kept.output
    assert "deleted 7 executions (errors and timeouts kept)" in kept.stdout
    assert count_rows(postgres_url) == 7
    assert count_rows(postgres_url, "status in ('error', 'timeout')") == 3

    rest = json.loads(invoke("purge", "--older-than", "4w", "--json", *url).stdout)
    assert rest["deleted"] == 3
    assert count_rows(postgres_url) == 4  # the recent ones
    assert invoke("purge", "--older-than", "soon", *url).exit_code == 2


def test_purge_on_the_embedded_sqlite_default(sqlite_url: str) -> None:
    config = build_config(database_url=sqlite_url)
    get_store(sqlite_url).insert_many(
        [wire(config, started_at=days_ago(3)), wire(config, started_at=days_ago(1))]
    )
    result = invoke("purge", "--older-than", "48h", "--json", "--database-url", sqlite_url)
    assert json.loads(result.stdout)["deleted"] == 1
    assert count_rows(sqlite_url) == 1


def test_replay_inserts_spooled_records_and_empties_the_spool(
    postgres_url: str, tmp_path: Path
) -> None:
    config = build_config(database_url=postgres_url)
    spool = get_spool(config.spool_dir, config.spool_max_bytes)
    first = [wire(config, agent="router") for _ in range(30)]
    second = [wire(config, agent="summarizer") for _ in range(12)]
    spool.write(first)
    spool.write(second)
    get_store(postgres_url).insert_many(first[:5])  # stored already: not duplicated
    (config.spool_dir / "spool-00000000T000000000000-1-1.jsonl").write_bytes(b'{"broken\n')
    spool_dir = os.environ["AGENTLOG_SPOOL_DIR"]

    status = json.loads(invoke("status", "--json", "--database-url", postgres_url).stdout)
    assert status["spool"]["records"] == 43
    assert status["spool"]["directory"] == spool_dir

    result = invoke("replay", "--batch-size", "10", "--database-url", postgres_url)
    assert result.exit_code == 1  # the corrupt line is reported
    assert "replayed 42 records from 3 files: 37 new rows (5 were stored already)" in result.stdout
    assert "corrupt line skipped: spool-00000000T000000000000-1-1.jsonl:1" in result.stdout
    assert count_rows(postgres_url) == 42
    assert spool.files() == []

    again = invoke("replay", "--json", "--database-url", postgres_url)
    assert again.exit_code == 0
    assert json.loads(again.stdout)["files"] == 0


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    dead = "postgresql+psycopg://agentlog:s3cret@127.0.0.1:1/agentlog"
    for command in ("migrate", "replay", "purge --older-than 1d"):
        result = invoke(*command.split(), "--database-url", dead)
        assert result.exit_code == 1, command
        assert isinstance(result.exception, SystemExit), command
        assert "cannot reach the database at postgresql+psycopg://agentlog:***@127.0.0.1:1" in (
            result.stderr
        ), command
        assert "s3cret" not in result.output


def test_doctor_says_which_hot_path_track_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentlog import tracking

    url = f"sqlite:///{tmp_path / 'doctor.db'}"

    def hot_path() -> dict[str, str]:
        report = json.loads(invoke("doctor", "--json", "--database-url", url).stdout)
        return {c["name"]: c for c in report["checks"]}["hot path"]

    expected = ("pass", "in C") if tracking.ACCELERATED else ("info", "pure Python")
    check = hot_path()
    assert (check["status"], expected[1] in check["detail"]) == (expected[0], True)
    monkeypatch.setattr(tracking, "ACCELERATED", False)
    monkeypatch.setenv("AGENTLOG_NO_EXTENSIONS", "1")
    check = hot_path()
    assert check["status"] == "info"
    assert "AGENTLOG_NO_EXTENSIONS is set" in check["detail"]
