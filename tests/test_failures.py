"""The failure chain: database -> spool -> counted loss. Nothing raises into the caller."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import agentlog
from agentlog.config import get_config
from agentlog.spool import get_spool
from agentlog.store import get_store

from .support.postgres import free_port


@pytest.fixture
def dead_database_url() -> str:
    return f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing"


def test_sync_database_down_spools_and_never_raises(
    dead_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agentlog.configure(mode="sync", database_url=dead_database_url, spool_dir=tmp_path / "spool")
    with agentlog.track("bot") as run:
        run.parameters = {"password": "hunter2"}
    stats = agentlog.stats()
    assert stats["spooled"] == 1 and stats["errors"] == 1 and stats["logged"] == 0
    assert "database write failed" in caplog.text and "spooled 1 executions" in caplog.text
    spooled = b"".join(p.read_bytes() for p in (tmp_path / "spool").iterdir())
    assert str(run.id).encode() in spooled
    assert b"hunter2" not in spooled and b"hunter2" not in caplog.text.encode()


def test_spool_is_replayed_when_the_database_is_back(
    dead_database_url: str, postgres_url: str, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    agentlog.configure(mode="sync", database_url=dead_database_url, spool_dir=spool_dir)
    ids = []
    for _ in range(3):
        with agentlog.track("bot") as run:
            pass
        ids.append(run.id)
    assert agentlog.stats()["spooled"] == 3
    agentlog.configure(mode="sync", database_url=postgres_url, spool_dir=spool_dir)
    with agentlog.track("after") as after:
        pass
    stored = {e.id for e in agentlog.executions()}
    assert stored == {*ids, after.id}
    assert list(spool_dir.iterdir()) == []


def test_replay_twice_never_duplicates(database_url: str, tmp_path: Path) -> None:
    config = agentlog.configure(mode="sync", database_url=database_url, spool_dir=tmp_path)
    from agentlog.serialize import to_wire

    records = [to_wire(agentlog.Execution(agent=f"a{i}"), config) for i in range(5)]
    for record in records:
        record["started_at"] = "2026-01-01T00:00:00+00:00"
    spool = get_spool(config.spool_dir, config.spool_max_bytes)
    spool.write(records)
    spool.write(records[:2])  # the same records spooled twice
    report = spool.replay(get_store(database_url).insert_many)
    assert (report.records, report.inserted, report.files) == (7, 5, 2)
    assert get_store(database_url).count() == 5
    assert spool.files() == []


def test_corrupt_spool_line_is_reported_and_skipped(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = agentlog.configure(mode="sync", database_url=sqlite_url, spool_dir=tmp_path / "s")
    from agentlog.serialize import to_wire

    spool = get_spool(config.spool_dir, config.spool_max_bytes)
    a, b = (to_wire(agentlog.Execution(agent=n, started_at=None), config) for n in "ab")
    a["started_at"] = b["started_at"] = "2026-01-01T00:00:00+00:00"
    path = spool.write([a, b])
    lines = path.read_bytes().splitlines()
    path.write_bytes(lines[0] + b"\n{not json\n" + lines[1] + b"\n")
    report = spool.replay(get_store(sqlite_url).insert_many)
    assert report.inserted == 2
    assert report.corrupt == [f"{path.name}:2"]
    assert f"{path.name}:2" in caplog.text


def test_spool_cap_is_a_clear_error_and_a_counted_loss(
    dead_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agentlog.configure(
        mode="sync", database_url=dead_database_url, spool_dir=tmp_path, spool_max_bytes=1500
    )
    for _ in range(5):
        with agentlog.track("bot") as run:
            run.response = "x" * 400
    stats = agentlog.stats()
    assert stats["spooled"] >= 1 and stats["dropped"] >= 1
    assert stats["spooled"] + stats["dropped"] == 5
    assert "is full" in caplog.text and "spool_max_bytes" in caplog.text
    assert "lost 1 executions" in caplog.text


def test_spool_unwritable_is_a_logged_loss(
    dead_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    agentlog.configure(mode="sync", database_url=dead_database_url, spool_dir=blocker / "spool")
    with caplog.at_level(logging.ERROR), agentlog.track("bot"):
        pass
    assert agentlog.stats()["dropped"] == 1
    assert "lost 1 executions" in caplog.text


def test_missing_schema_names_the_fix(
    empty_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    agentlog.configure(mode="sync", database_url=empty_postgres_url)
    with agentlog.track("bot"):
        pass
    assert "agentlog migrate" in caplog.text
    assert agentlog.stats()["spooled"] == 1


def test_sqlite_in_a_missing_directory(tmp_path: Path) -> None:
    agentlog.configure(mode="sync", database_url=f"sqlite:///{tmp_path}/no/such/dir/x.db")
    with agentlog.track("bot"):
        pass
    assert agentlog.stats()["spooled"] == 1
    assert os.listdir(get_config().spool_dir)
