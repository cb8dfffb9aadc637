"""The database side: schema version, migrations, rows written recently."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from agentlog.schema import TABLE_NAME
from agentlog.schema import executions as table
from agentlog.store import Store

# Rows logged in the last hour almost always started in the last day; bounding
# started_at (indexed) keeps the count off a full scan of a large table.
_STARTED_BOUND = timedelta(days=1)


@dataclass
class DatabaseHealth:
    dialect: str
    table_exists: bool
    revision: str | None
    head: str
    rows_last_minute: int | None
    rows_last_hour: int | None
    note: str | None = None

    @property
    def schema_current(self) -> bool:
        return self.table_exists and self.revision == self.head


def sqlite_file_missing(store: Store) -> Path | None:
    """The path of a SQLite database file that does not exist yet (reading would create it)."""
    url = make_url(store.url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database or "")
    return None if path.exists() else path


def db_param(store: Store, moment: datetime) -> datetime:
    """``moment`` as the column compares it: naive UTC on SQLite (text), aware elsewhere."""
    moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None) if store.dialect == "sqlite" else moment


def rows_logged_since(store: Store, seconds: float) -> int:
    now = datetime.now(timezone.utc)
    since = now - timedelta(seconds=seconds)
    query = (
        select(func.count())
        .select_from(table)
        .where(table.c.logged_at >= db_param(store, since))
        .where(table.c.started_at >= db_param(store, since - _STARTED_BOUND))
    )
    with store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def database_health(store: Store) -> DatabaseHealth:
    from agentlog.migrations import current_revision, head_revision  # alembic: imported on use

    head = head_revision()
    missing = sqlite_file_missing(store)
    if missing is not None:
        return DatabaseHealth(
            store.dialect,
            False,
            None,
            head,
            None,
            None,
            note=f"{missing} does not exist yet (created on the first write)",
        )
    if not inspect(store.engine).has_table(TABLE_NAME):
        return DatabaseHealth(
            store.dialect,
            False,
            current_revision(store.engine),
            head,
            None,
            None,
            note=f"table {TABLE_NAME} is missing: run `agentlog migrate`",
        )
    return DatabaseHealth(
        dialect=store.dialect,
        table_exists=True,
        revision=current_revision(store.engine),
        head=head,
        rows_last_minute=rows_logged_since(store, 60),
        rows_last_hour=rows_logged_since(store, 3600),
    )


def migrate(store: Store) -> tuple[str | None, str | None]:
    """Upgrade the schema to the code's head; returns the revisions before and after."""
    from agentlog.migrations import current_revision, upgrade

    before = current_revision(store.engine)
    upgrade(store.engine)
    return before, current_revision(store.engine)
