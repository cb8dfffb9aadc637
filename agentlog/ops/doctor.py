"""``agentlog doctor``: the troubleshooting list, run as checks that each say what to try."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text

from agentlog.config import Config
from agentlog.counters import stats
from agentlog.ops.context import Ops, OpsError, safe_url
from agentlog.ops.database import database_health
from agentlog.ops.queue_health import failed_jobs, format_age, live_workers, oldest_pending_age
from agentlog.ops.status import spool_info

CheckStatus = Literal["pass", "warn", "fail", "info"]

DEFAULT_MAX_DEPTH = 1000


@dataclass
class Check:
    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None


def _worker_command(config: Config) -> str:
    return (
        f"agentlog worker --redis-url {safe_url(config.redis_url or '')} "
        f"--database-url {safe_url(config.database_url)} --queue {config.queue_name}"
    )


def _redis_checks(ops: Ops, max_depth: int) -> list[Check]:
    config = ops.config
    if not ops.has_redis:
        return [
            Check(
                "Redis reachable",
                "info",
                "no Redis configured: async mode writes from an in-process thread, "
                "so there is no queue and no worker to check",
                "to use rq workers, set AGENTLOG_REDIS_URL (or --redis-url)",
            )
        ]
    try:
        connection = ops.redis  # connects and pings once
        started = time.perf_counter()
        connection.ping()
        latency = time.perf_counter() - started
    except OpsError as exc:
        needs = "needs Redis"
        return [
            Check(
                "Redis reachable",
                "fail",
                str(exc),
                "start redis-server or fix --redis-url / AGENTLOG_REDIS_URL; until then "
                "apps fall back to writing synchronously (see 'recent fallbacks')",
            ),
            Check("worker alive", "info", needs),
            Check("queue depth", "info", needs),
            Check("failed jobs", "info", needs),
        ]
    checks = []
    hot_path_timeout = Config.redis_timeout
    if latency > hot_path_timeout / 2:
        checks.append(
            Check(
                "Redis reachable",
                "warn",
                f"{safe_url(config.redis_url or '')} answered PING in {latency * 1000:.0f} ms, "
                f"close to the apps' redis_timeout ({hot_path_timeout * 1000:.0f} ms)",
                "enqueues that time out fall back to sync writes: move Redis closer "
                "or raise redis_timeout",
            )
        )
    else:
        checks.append(
            Check(
                "Redis reachable",
                "pass",
                f"{safe_url(config.redis_url or '')} answered PING in {latency * 1000:.1f} ms",
            )
        )
    with ops.errors():
        queue = ops.queue
        workers = live_workers(queue)
        depth = queue.count
        oldest = oldest_pending_age(queue)
        failed_count = queue.failed_job_registry.get_job_count(cleanup=False)
        latest_failure = failed_jobs(queue, 1, config) if failed_count else []
    if workers:
        names = ", ".join(f"{w.name} ({w.state})" for w in workers[:5])
        more = f" and {len(workers) - 5} more" if len(workers) > 5 else ""
        checks.append(
            Check("worker alive", "pass", f"{len(workers)} on '{queue.name}': {names}{more}")
        )
    else:
        checks.append(
            Check(
                "worker alive",
                "fail",
                f"no rq worker is listening on queue '{queue.name}': jobs wait and no row "
                "is written",
                f"start one: {_worker_command(config)} (under systemd or supervisord: "
                "docs/operations.md)",
            )
        )
    waited = f", the oldest for {format_age(oldest)}" if depth else ""
    depth_detail = f"{depth} jobs waiting{waited}"
    if depth > max_depth:
        checks.append(
            Check(
                "queue depth",
                "fail",
                f"{depth_detail} (more than {max_depth})",
                "start more workers (agentlog worker); if they are busy but slow, look at "
                "the database's insert times and `agentlog failed`",
            )
        )
    else:
        checks.append(Check("queue depth", "pass", depth_detail))
    if failed_count:
        latest = latest_failure[0].error if latest_failure else "?"
        checks.append(
            Check(
                "failed jobs",
                "fail",
                f"{failed_count} in the failed registry; latest: {latest}",
                "read them with `agentlog failed`; once the cause is fixed (often: database "
                "down or schema missing), `agentlog requeue --all`",
            )
        )
    else:
        checks.append(Check("failed jobs", "pass", "none"))
    return checks


def _fallback_check() -> Check:
    counts = stats()
    if counts["fallbacks"] or counts["spooled"] or counts["dropped"]:
        return Check(
            "recent fallbacks",
            "warn",
            f"this process: {counts['fallbacks']} fallbacks, {counts['spooled']} spooled, "
            f"{counts['dropped']} dropped",
            "check Redis and the database",
        )
    return Check(
        "recent fallbacks",
        "info",
        "counted in each app process, not here: agentlog.stats()['fallbacks'], and the "
        "log line 'agentlog: falling back to sync: <reason>'",
        "if apps fall back, fix what the reason names (usually Redis down or slow)",
    )


def _database_checks(ops: Ops) -> list[Check]:
    config = ops.config
    url = safe_url(config.database_url)
    migrate = f"agentlog migrate --database-url {url}"
    try:
        with ops.errors():
            store = ops.store
            health = database_health(store)
            if health.table_exists:
                started = time.perf_counter()
                with store.engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                latency = time.perf_counter() - started
    except OpsError as exc:
        return [
            Check(
                "database reachable",
                "fail",
                str(exc),
                "start the database or fix --database-url; meanwhile jobs fail and retry "
                "(then wait in the failed registry) and apps spool to disk",
            ),
            Check("schema current", "info", "needs the database"),
        ]
    if not health.table_exists and health.note and "does not exist yet" in health.note:
        return [
            Check("database reachable", "pass", f"{url}: {health.note}"),
            Check("schema current", "pass", "SQLite is migrated on first use"),
        ]
    checks = [
        Check(
            "database reachable",
            "pass",
            f"{url}" + (f" answered in {latency * 1000:.1f} ms" if health.table_exists else ""),
        )
    ]
    if health.schema_current:
        checks.append(Check("schema current", "pass", f"at {health.revision} (head)"))
    elif not health.table_exists:
        checks.append(
            Check(
                "schema current",
                "fail",
                f"table agentlog_executions is missing (revision {health.revision or 'none'})",
                f"{migrate}",
            )
        )
    else:
        checks.append(
            Check(
                "schema current",
                "fail",
                f"database at {health.revision or 'none'}, code at {health.head}",
                f"{migrate} (then restart workers)",
            )
        )
    return checks


def _spool_check(ops: Ops) -> Check:
    spool = spool_info(ops.spool)
    if spool.records or spool.files:
        return Check(
            "spool empty",
            "fail",
            f"{spool.records} executions in {spool.files} files under {spool.directory} "
            "(written when neither the queue nor the database took them)",
            "once the database is reachable: agentlog replay (apps also replay on their "
            "next successful write)",
        )
    return Check("spool empty", "pass", f"nothing under {spool.directory}")


def _hot_path_check() -> Check:
    from agentlog import tracking

    if tracking.ACCELERATED:
        return Check("hot path", "pass", "track() runs in C (agentlog._speedups)")
    reason = (
        "AGENTLOG_NO_EXTENSIONS is set"
        if os.environ.get("AGENTLOG_NO_EXTENSIONS")
        else "agentlog._speedups is not built"
    )
    return Check(
        "hot path",
        "info",
        f"track() runs in pure Python ({reason}): same behaviour, a few µs more per call",
        "reinstall agentlog where a C compiler is available to build it",
    )


def run_doctor(ops: Ops, *, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Check]:
    return [
        *_redis_checks(ops, max_depth),
        _fallback_check(),
        _hot_path_check(),
        *_database_checks(ops),
        _spool_check(ops),
    ]


def healthy(checks: list[Check]) -> bool:
    return not any(check.status == "fail" for check in checks)
