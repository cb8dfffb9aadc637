"""``agentlog worker``: rq's own worker on the logging queue, with the JSON serializer."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.worker import BaseWorker

import agentlog
from agentlog.config import Config
from agentlog.jobs import JSONSerializer
from agentlog.ops.context import Ops, redis_unreachable
from agentlog.ops.queue_health import ATTEMPTS_FIELD

# A worker lives long and may sit across a network from Redis: patient connects,
# and rq sets the socket timeout it needs for its blocking dequeue itself.
WORKER_CONNECT_TIMEOUT = 5.0

# How long rq's pubsub thread (remote shutdown and kill commands) waits per turn
# when it is not subscribed. rq gives it 60 s: when the thread reads the reply
# to teardown's UNSUBSCRIBE before teardown stops it, it goes back to waiting
# the full 60 s, and redis-py 8 joins it with no timeout, so a burst worker
# would sometimes take a minute to exit. Commands still arrive at once: a
# subscribed thread blocks on the socket, not on this wait.
PUBSUB_WAIT = 1.0


def worker_connection(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=WORKER_CONNECT_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=30,
    )


def count_attempt(worker: BaseWorker, job: Job) -> None:
    """One more run of ``job``, kept in its hash so that ``agentlog failed`` can show it."""
    worker.connection.hincrby(job.key, ATTEMPTS_FIELD, 1)


class PromptTeardown(BaseWorker):
    """rq's pubsub subscription, with a teardown bounded by ``PUBSUB_WAIT``."""

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]  # rq: None
            sleep_time=PUBSUB_WAIT, daemon=True, exception_handler=self._pubsub_exception_handler
        )


class AgentlogWorker(PromptTeardown, Worker):
    """rq's forking ``Worker``, counting each job's runs (retries and requeues included)."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        count_attempt(self, job)
        super().execute_job(job, queue)


class AgentlogSimpleWorker(PromptTeardown, SimpleWorker):
    """rq's ``SimpleWorker`` (no fork), counting each job's runs."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        count_attempt(self, job)
        super().execute_job(job, queue)


def preflight(ops: Ops) -> None:
    """Fail before the first job, not in every job: Redis answers, the table exists.

    It also leaves the store open and its schema checked in this process, so a
    forking worker's job children inherit both instead of redoing them per job.
    """
    ops.redis  # noqa: B018 - connects and pings, or raises OpsError
    with ops.errors():
        ops.store.prepare()  # SQLite creates its schema; PostgreSQL says to migrate


def build_worker(
    config: Config,
    extra_queues: Sequence[str] = (),
    *,
    simple: bool = False,
    name: str | None = None,
) -> BaseWorker:
    assert config.redis_url is not None
    connection = worker_connection(config.redis_url)
    names = list(dict.fromkeys([config.queue_name, *extra_queues]))
    worker_class: type[BaseWorker] = AgentlogSimpleWorker if simple else AgentlogWorker
    return worker_class(names, name=name, connection=connection, serializer=JSONSerializer)


def run_worker(
    ops: Ops,
    extra_queues: Sequence[str] = (),
    *,
    burst: bool = False,
    simple: bool = False,
    with_scheduler: bool = False,
    name: str | None = None,
    max_jobs: int | None = None,
    logging_level: str = "INFO",
) -> bool:
    """Run until stopped (or, with ``burst``, until the queues are empty). True if it did work."""
    config = ops.config
    preflight(ops)
    # The jobs read the database URL from the process config.
    agentlog.configure(
        database_url=config.database_url,
        redis_url=config.redis_url,
        queue_name=config.queue_name,
        spool_dir=config.spool_dir,
    )
    worker = build_worker(config, extra_queues, simple=simple, name=name)
    try:
        return bool(
            worker.work(
                burst=burst,
                with_scheduler=with_scheduler,
                max_jobs=max_jobs,
                logging_level=logging_level,
            )
        )
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise redis_unreachable(config.redis_url or "?", exc) from None
