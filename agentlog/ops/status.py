"""``agentlog status``: one snapshot of the queue, the database, the spool and the counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agentlog.counters import stats
from agentlog.ops.context import Ops, OpsError, safe_url
from agentlog.ops.database import DatabaseHealth, database_health
from agentlog.ops.queue_health import QueueHealth, queue_health
from agentlog.spool import Spool


@dataclass
class SpoolInfo:
    directory: Path
    files: int
    records: int
    bytes: int


def spool_info(spool: Spool) -> SpoolInfo:
    return SpoolInfo(spool.directory, len(spool.files()), spool.count(), spool.size())


@dataclass
class Status:
    redis_url: str | None
    database_url: str
    queue_name: str
    queue: QueueHealth | None
    database: DatabaseHealth | None
    spool: SpoolInfo
    counters: dict[str, int]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return not self.errors


def collect_status(ops: Ops) -> Status:
    """Everything that can be read; a part that cannot is reported in ``errors``."""
    config = ops.config
    errors: dict[str, str] = {}
    queue = None
    if ops.has_redis:
        try:
            with ops.errors():
                queue = queue_health(ops.queue)
        except OpsError as exc:
            errors["redis"] = str(exc)
    database = None
    try:
        with ops.errors():
            database = database_health(ops.store)
    except OpsError as exc:
        errors["database"] = str(exc)
    return Status(
        redis_url=safe_url(config.redis_url) if config.redis_url else None,
        database_url=safe_url(config.database_url),
        queue_name=config.queue_name,
        queue=queue,
        database=database,
        spool=spool_info(ops.spool),
        counters=stats(),
        errors=errors,
    )
