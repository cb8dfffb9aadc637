"""Retention: delete executions older than a cutoff, in short transactions.

Each batch selects at most ``batch_size`` ids by ``started_at`` (indexed) and
deletes them in its own transaction, so no lock is held for long and workers
keep inserting while a purge runs (new rows are never older than the cutoff).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import ColumnElement, and_, delete, func, select

from agentlog.ops.database import db_param
from agentlog.schema import executions as table
from agentlog.store import Store

DEFAULT_BATCH_SIZE = 1000
ERROR_STATUSES = ("error", "timeout")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_age(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"``, ``"45s"`` as a ``timedelta``."""
    match = _AGE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an age: use a number and a unit, e.g. 30d, 12h, 90m, 2w")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r}: the age must be more than zero")
    return timedelta(seconds=seconds)


@dataclass
class PurgeReport:
    cutoff: datetime
    matched: int
    deleted: int
    dry_run: bool
    keep_errors: bool


def _condition(store: Store, cutoff: datetime, keep_errors: bool) -> ColumnElement[bool]:
    condition = table.c.started_at < db_param(store, cutoff)
    if keep_errors:
        condition = and_(condition, table.c.status.not_in(ERROR_STATUSES))
    return condition


def count_older(store: Store, cutoff: datetime, *, keep_errors: bool = False) -> int:
    query = select(func.count()).select_from(table).where(_condition(store, cutoff, keep_errors))
    with store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def purge(
    store: Store,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    keep_errors: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_count: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> PurgeReport:
    """Delete executions that started more than ``older_than`` ago (errors kept on request).

    ``on_count(matched)`` is called once the rows are counted, ``progress(n)``
    after each committed batch. A dry run only counts.
    """
    cutoff = datetime.now(timezone.utc) - older_than
    matched = count_older(store, cutoff, keep_errors=keep_errors)
    if on_count:
        on_count(matched)
    report = PurgeReport(cutoff, matched, 0, dry_run, keep_errors)
    if dry_run or not matched:
        return report
    condition = _condition(store, cutoff, keep_errors)
    batch_query = select(table.c.id).where(condition).order_by(table.c.started_at).limit(batch_size)
    while True:
        with store.engine.begin() as connection:
            ids = list(connection.execute(batch_query).scalars())
            if not ids:
                break
            deleted = connection.execute(delete(table).where(table.c.id.in_(ids))).rowcount
        report.deleted += deleted
        if progress:
            progress(deleted)
    return report
