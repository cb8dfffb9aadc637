"""What crossed the queue, read back from Redis, and the real rq worker that performs it."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.timeouts import BaseDeathPenalty

from agentlog.jobs import FUNC_NAME, JSONSerializer

from . import matching

# rq's worker adds its own stdout handlers to these loggers (and stops their
# propagation) when nothing handles them; a NullHandler keeps its records going
# to the root logger, where pytest's log capture sees them.
for _name in ("rq.worker", "rq.job"):
    if not logging.getLogger(_name).handlers:
        logging.getLogger(_name).addHandler(logging.NullHandler())


@dataclass(frozen=True)
class QueuedJob:
    """One job as it is stored in Redis: decoded from the bytes there, not kept from before."""

    id: str
    func_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    description: str
    data: bytes
    """The serialized ``(func, instance, args, kwargs)`` payload (JSON)."""
    raw: bytes
    """The ``data`` field of the job's Redis hash, exactly as stored (rq compresses it)."""
    error: str | None = None
    """For a failed job: rq's ``exc_info`` (the traceback the job ended with)."""

    @property
    def executions(self) -> list[dict[str, Any]]:
        """The wire records of a ``log_executions`` batch (redacted, serialized)."""
        if self.func_name != FUNC_NAME or not self.args or not isinstance(self.args[0], list):
            return []
        return [record for record in self.args[0] if isinstance(record, dict)]


def read_job(connection: redis.Redis, job_id: str) -> QueuedJob:
    """The job ``job_id`` decoded from what Redis holds."""
    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    raw = connection.hget(job.key, "data")
    raw_bytes = raw if isinstance(raw, bytes) else b""
    try:
        data = zlib.decompress(raw_bytes)
    except zlib.error:
        data = raw_bytes
    return QueuedJob(
        id=job.id,
        func_name=job.func_name or "",
        args=tuple(job.args),
        kwargs=dict(job.kwargs),
        description=job.description or "",
        data=data,
        raw=raw_bytes,
    )


class _NoDeathPenalty(BaseDeathPenalty):
    """Jobs run in the test's thread: no SIGALRM, no async exception.

    (pytest-timeout, if used, guards against a hanging job.)
    """

    def setup_death_penalty(self) -> None:
        return None

    def cancel_death_penalty(self) -> None:
        return None


class HarnessWorker(SimpleWorker):
    """rq's ``SimpleWorker``, performing jobs in the calling thread without touching its signals.

    Everything that performs a job (dequeue, the job function, retries, the
    registries, the failure handling) is rq's own; what is left out is the
    process plumbing: signal handlers (pytest owns them, and the thread may not
    be the main one), the pubsub thread for remote commands and job time limits.
    """

    death_penalty_class = _NoDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None

    def subscribe(self) -> None:
        return None

    def unsubscribe(self) -> None:
        return None


class JobFailed:
    """The exception a job ended with, kept until the test sees it."""

    def __init__(self, job_id: str, error: BaseException) -> None:
        self.job_id = job_id
        self.error = error


def perform(queue: Queue, connection: redis.Redis) -> tuple[int, list[JobFailed]]:
    """Perform every job waiting in ``queue`` (retries included) with a real rq worker.

    Returns how many jobs ran and the errors of those that failed for good.
    """
    errors: dict[str, BaseException] = {}

    def record(job: Job, exc_type: type[BaseException], exc: BaseException, tb: Any) -> bool:
        errors[job.id] = exc
        return True  # go on to rq's own handling (logging, retry, FailedJobRegistry)

    worker = HarnessWorker(
        [queue], connection=connection, serializer=JSONSerializer, exception_handlers=[record]
    )
    waiting = set(queue.get_job_ids())
    if waiting:
        worker.work(burst=True)
    failed_ids = set(FailedJobRegistry(queue=queue).get_job_ids())
    return len(waiting), [
        JobFailed(job_id, exc) for job_id, exc in errors.items() if job_id in failed_ids
    ]


class AgentlogQueue:
    """The ``agentlog_queue`` fixture: every job enqueued in this test, read back from Redis."""

    def __init__(self, queue: Queue, connection: redis.Redis, mode: str) -> None:
        self.queue = queue
        self.connection = connection
        self.mode = mode
        self._jobs: list[QueuedJob] = []
        self._pending_errors: list[JobFailed] = []

    # -- capture (called by the library after each enqueue) -------------

    def capture(self, jobs: Sequence[Any]) -> None:
        for job in jobs:
            self._jobs.append(read_job(self.connection, job.id))

    def run_inline(self, jobs: Sequence[Any]) -> None:
        """``inline`` mode: perform what was just enqueued, in the test's thread."""
        _, failed = perform(self.queue, self.connection)
        self._pending_errors.extend(failed)

    # -- the fixture's API ------------------------------------------------

    @property
    def jobs(self) -> list[QueuedJob]:
        """Every job enqueued in this test, in order (performed ones included)."""
        return list(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[QueuedJob]:
        return iter(list(self._jobs))

    def __repr__(self) -> str:
        return (
            f"<agentlog_queue {self.queue.name!r}: {len(self._jobs)} jobs, {self.pending} waiting>"
        )

    @property
    def executions(self) -> list[dict[str, Any]]:
        """The wire records of every enqueued job, in order: what crossed Redis."""
        return [record for job in self._jobs for record in job.executions]

    @property
    def pending(self) -> int:
        """Jobs waiting in the queue (not performed yet)."""
        return int(self.queue.count)

    @property
    def failed(self) -> list[QueuedJob]:
        """Jobs that failed for good (rq's ``FailedJobRegistry``), each with its ``error``.

        Looking at them counts as seeing their errors: they are not raised again.
        """
        self._pending_errors.clear()
        return self.failed_jobs()

    def failed_jobs(self) -> list[QueuedJob]:
        """``failed`` without counting as seeing the errors (for messages)."""
        registry = FailedJobRegistry(queue=self.queue)
        failed = []
        for job_id in registry.get_job_ids():
            try:
                job = read_job(self.connection, job_id)
            except Exception:
                continue
            rq_job = Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
            result = rq_job.latest_result()
            failed.append(replace(job, error=result.exc_string if result else None))
        return failed

    def drain(self) -> int:
        """Perform every waiting job with a real rq ``SimpleWorker``; returns how many ran.

        A job's exception is raised here (the first one; the others are chained
        in its notes), never swallowed. rq has already put the job in its
        ``FailedJobRegistry`` by then, as a worker would.
        """
        __tracebackhide__ = True
        ran, failed = perform(self.queue, self.connection)
        self._pending_errors.extend(failed)
        self.raise_pending()
        return ran

    def raise_pending(self) -> None:
        """Raise the first job error nobody has seen yet (``inline`` mode runs jobs early)."""
        __tracebackhide__ = True
        if not self._pending_errors:
            return
        first, *rest = self._pending_errors
        self._pending_errors.clear()
        error = first.error
        error.add_note(f"agentlog: raised by rq job {first.job_id} (agentlog.jobs.log_executions)")
        for other in rest:
            error.add_note(f"agentlog: job {other.job_id} failed too: {other.error!r}")
        raise error

    @property
    def unseen_errors(self) -> list[JobFailed]:
        return list(self._pending_errors)

    def clear(self) -> None:
        """Forget the captured jobs and empty the queue (waiting jobs are deleted, not run)."""
        self._jobs.clear()
        self._pending_errors.clear()
        for job in self.queue.get_jobs():
            job.delete()

    def assert_enqueued(self, count: int | None = None, **fields: Any) -> QueuedJob:
        """Assert that records matching ``fields`` were enqueued; returns the (first) matching job.

        ``count`` is the number of matching records (None: at least one).
        Field values may be plain values, compiled regexes or predicates.
        """
        __tracebackhide__ = True
        matching.check_fields(fields, "assert_enqueued()")
        hits = [
            (job, record)
            for job in self._jobs
            for record in job.executions
            if not matching.mismatches(record, fields)
        ]
        if hits and (count is None or len(hits) == count):
            return hits[0][0]
        raise AssertionError(self._enqueued_message(count, fields, len(hits)))

    def _enqueued_message(self, count: int | None, fields: dict[str, Any], hits: int) -> str:
        wanted = "at least one record" if count is None else f"{count} record(s)"
        lines = [
            "agentlog: assert_enqueued failed",
            f"expected: {wanted} enqueued with {matching.describe_expected(fields)}",
        ]
        records = self.executions
        if hits:
            lines.append(f"found: {hits} matching record(s) in {len(self._jobs)} job(s)")
        elif not records:
            lines.append("found: nothing was enqueued in this test")
        else:
            lines.append(
                f"found: {len(records)} record(s) in {len(self._jobs)} job(s), none matching; "
                "the closest:"
            )
            for record in matching.closest(records, fields):
                lines.append(f"  {matching.summary(record)}")
                lines.extend(matching.diff_lines(record, fields))
        lines.append("try:")
        if self.mode == "sync":
            lines.append(
                "  - this test runs in sync mode, where nothing crosses the queue: use the "
                "agentlog_async fixture or @pytest.mark.agentlog(mode='async')"
            )
        if not records:
            lines.append(
                "  - check that the code under test calls agentlog.track() / agentlog.log() "
                "inside this test"
            )
            lines.append(
                "  - a queue outage makes the library write synchronously instead: "
                "see agentlog_outage.fallbacks / pytest_agentlog.assert_fell_back()"
            )
        else:
            lines.append(
                "  - the records are as they crossed Redis: redacted, with ids, "
                "times and costs as text (UUID, datetime and number values are compared as such)"
            )
        return "\n".join(lines)
