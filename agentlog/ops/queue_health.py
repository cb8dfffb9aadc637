"""The queue as rq sees it: depth, registries, workers, pending and failed jobs.

Reads only: registry counts are taken without rq's cleanup (which moves
abandoned jobs around), so looking never changes what is looked at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.results import Result
from rq.utils import now

from agentlog.config import Config
from agentlog.jobs import FUNC_NAME
from agentlog.redaction import Redaction

# Runs of a job, counted in its hash by `agentlog worker` (plain `rq worker` does not count).
ATTEMPTS_FIELD = "agentlog_attempts"
# A job's error is shown as one line of at most this many characters.
ERROR_LINE_LENGTH = 300
_ERROR_REDACTION = Redaction(max_value_length=ERROR_LINE_LENGTH)
_TRACEBACK_REDACTION = Redaction(max_value_length=20_000)
# "package.module.SomeError: message" or "SomeError" alone, at the start of a line.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::\s|$)")
_NOT_EXCEPTION_LINES = ("Traceback ", "During handling", "The above exception")


@dataclass
class WorkerInfo:
    name: str
    state: str
    hostname: str | None
    pid: int | None
    queues: list[str]
    current_job: str | None
    last_heartbeat: datetime | None
    successful_jobs: int
    failed_jobs: int


@dataclass
class QueueHealth:
    queue: str
    depth: int
    oldest_pending_age: float | None
    started: int
    scheduled: int
    deferred: int
    failed: int
    workers: list[WorkerInfo] = field(default_factory=list)


@dataclass
class PendingExecution:
    job_id: str
    agent: str | None
    model: str | None
    status: str | None
    started_at: str | None
    age: float | None
    enqueued_at: datetime | None


@dataclass
class FailedJob:
    job_id: str
    function: str | None
    executions: int | None
    attempts: int
    failed_at: datetime | None
    error: str
    traceback: str


def age_seconds(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return max(0.0, (now() - moment).total_seconds())


def format_age(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3.5h``, ``2.0d`` (``-`` for unknown)."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return "<1s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def live_workers(queue: Queue) -> list[WorkerInfo]:
    workers = []
    for worker in Worker.all(queue=queue):
        workers.append(
            WorkerInfo(
                name=worker.name,
                state=str(worker.get_state()),
                hostname=worker.hostname,
                pid=worker.pid,
                queues=worker.queue_names(),
                current_job=worker.get_current_job_id(),
                last_heartbeat=worker.last_heartbeat,
                successful_jobs=worker.successful_job_count,
                failed_jobs=worker.failed_job_count,
            )
        )
    return sorted(workers, key=lambda w: w.name)


def oldest_pending_age(queue: Queue) -> float | None:
    """Seconds since the job at the head of the queue was enqueued (None when empty)."""
    for job_id in queue.get_job_ids(0, 10):
        job = queue.fetch_job(job_id)
        if job is not None:
            return age_seconds(job.enqueued_at or job.created_at)
    return None


def queue_health(queue: Queue) -> QueueHealth:
    return QueueHealth(
        queue=queue.name,
        depth=queue.count,
        oldest_pending_age=oldest_pending_age(queue),
        started=queue.started_job_registry.get_job_count(cleanup=False),
        scheduled=queue.scheduled_job_registry.get_job_count(cleanup=False),
        deferred=queue.deferred_job_registry.get_job_count(cleanup=False),
        failed=queue.failed_job_registry.get_job_count(cleanup=False),
        workers=live_workers(queue),
    )


def _batch(job: Job) -> list[Any] | None:
    """The executions a ``log_executions`` job carries, or None for another kind of job."""
    if job.func_name != FUNC_NAME:
        return None
    try:
        args = job.args
    except Exception:  # an undecodable payload: show the job without its contents
        return None
    if args and isinstance(args[0], list):
        return args[0]
    return None


def pending_executions(queue: Queue, limit: int) -> list[PendingExecution]:
    """Up to ``limit`` executions waiting in the queue, oldest job first (already redacted)."""
    found: list[PendingExecution] = []
    offset, page = 0, 50
    while len(found) < limit:
        job_ids = queue.get_job_ids(offset, page)
        if not job_ids:
            break
        offset += len(job_ids)
        jobs = Job.fetch_many(job_ids, connection=queue.connection, serializer=queue.serializer)
        for job in jobs:
            if job is None:
                continue
            enqueued_at = job.enqueued_at or job.created_at
            batch = _batch(job)
            if batch is None:
                found.append(PendingExecution(job.id, None, None, None, None, None, enqueued_at))
            for wire in batch or ():
                if not isinstance(wire, dict):
                    continue
                started = wire.get("started_at")
                found.append(
                    PendingExecution(
                        job_id=job.id,
                        agent=wire.get("agent"),
                        model=wire.get("model"),
                        status=wire.get("status"),
                        started_at=started,
                        age=age_seconds(_parse_time(started)),
                        enqueued_at=enqueued_at,
                    )
                )
            if len(found) >= limit:
                break
    return found[:limit]


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def error_line(exc_string: str | None) -> str:
    """The exception line of a traceback ("module.Error: message"), redacted and cut short."""
    if not exc_string:
        return "(no error recorded)"
    lines = [line.rstrip() for line in exc_string.strip().splitlines() if line.strip()]
    candidates = [
        line
        for line in lines
        if _EXCEPTION_LINE.match(line) and not line.startswith(_NOT_EXCEPTION_LINES)
    ]
    line = candidates[-1] if candidates else lines[-1]
    return _ERROR_REDACTION.text(line)


def attempts(job: Job, results: Sequence[Result], config: Config) -> int:
    """How often the job ran.

    Exact for jobs run by ``agentlog worker``, which counts each run in the
    job's hash. For other workers, an estimate: rq keeps one result per time a
    job ended in the failed registry, but not the runs its ``Retry`` consumed
    on the way; those are taken from ``Config.retry`` (agentlog enqueues with
    ``Retry(max=attempts - 1)``).
    """
    counted = job.connection.hget(job.key, ATTEMPTS_FIELD)
    if counted is not None:
        return int(counted)
    failures = sum(1 for result in results if result.type == Result.Type.FAILED) or 1
    first = config.retry.attempts if job.retry_intervals is not None else 1
    return first + failures - 1


def failed_jobs(queue: Queue, limit: int, config: Config) -> list[FailedJob]:
    """Up to ``limit`` jobs in the failed registry, the most recent failure first."""
    registry = queue.failed_job_registry
    job_ids = registry.get_job_ids(0, max(limit, 1) - 1, desc=True, cleanup=False)
    jobs = Job.fetch_many(job_ids, connection=queue.connection, serializer=queue.serializer)
    failed = []
    for job_id, job in zip(job_ids, jobs, strict=True):
        if job is None:
            failed.append(FailedJob(job_id, None, None, 0, None, "(job data expired)", ""))
            continue
        results = job.results()
        latest = next((r for r in results if r.type == Result.Type.FAILED), None)
        exc_string = latest.exc_string if latest is not None else None
        batch = _batch(job)
        failed.append(
            FailedJob(
                job_id=job.id,
                function=job.func_name,
                executions=len(batch) if batch is not None else None,
                attempts=attempts(job, results, config),
                failed_at=job.ended_at or (latest.created_at if latest else None),
                error=error_line(exc_string),
                traceback=_TRACEBACK_REDACTION.text(exc_string or ""),
            )
        )
    return failed[:limit]


@dataclass
class RequeueReport:
    requeued: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def requeue(queue: Queue, job_ids: Sequence[str] | None) -> RequeueReport:
    """Move failed jobs back onto their queue (all of them when ``job_ids`` is None)."""
    registry = queue.failed_job_registry
    if job_ids is None:
        job_ids = registry.get_job_ids(cleanup=False)
    report = RequeueReport()
    for job_id in job_ids:
        try:
            registry.requeue(job_id)
        except (InvalidJobOperation, NoSuchJobError):
            report.missing.append(job_id)
        else:
            report.requeued.append(job_id)
    return report
