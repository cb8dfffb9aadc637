"""Handing batches to rq over Redis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue
from rq import Retry as RqRetry

from agentlog.clock import deadline_clock
from agentlog.config import Config
from agentlog.jobs import JSONSerializer, log_executions
from agentlog.serialize import Wire

RedisFactory = Callable[[Config], "redis.Redis"]


def connect_redis(config: Config) -> redis.Redis:
    """A client that fails in ``redis_timeout`` seconds instead of retrying for seconds."""
    assert config.redis_url is not None
    return redis.Redis.from_url(
        config.redis_url,
        socket_connect_timeout=config.redis_timeout,
        socket_timeout=config.redis_timeout,
        retry=RedisRetry(NoBackoff(), 0),
        health_check_interval=0,
    )


def make_queue(config: Config, connection: redis.Redis) -> Queue:
    return Queue(config.queue_name, connection=connection, serializer=JSONSerializer)


class RqTransport:
    """Enqueues each batch as one ``log_executions`` job; several batches per round trip."""

    def __init__(self, config: Config, connection: redis.Redis) -> None:
        self.config = config
        self.connection = connection
        self.queue = make_queue(config, connection)
        retries = config.retry.attempts - 1
        # rq schedules retries in whole seconds (a wait above 0 needs a worker with a scheduler).
        interval = round(config.retry.wait)
        self._retry = RqRetry(max=retries, interval=interval) if retries else None

    def enqueue(self, batches: Sequence[list[Wire]]) -> list[Any]:
        """Enqueue all ``batches`` in one pipeline; raises on any Redis error."""
        datas = [
            Queue.prepare_data(
                log_executions,
                args=(batch,),
                timeout=int(self.config.job_timeout),
                retry=self._retry,
                description=f"agentlog.jobs.log_executions({len(batch)} executions)",
                # The rows are the result; keeping the job around only costs Redis memory.
                result_ttl=0,
                failure_ttl=7 * 24 * 3600,
            )
            for batch in batches
        ]
        with self.connection.pipeline() as pipe:
            jobs = self.queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
        return jobs


class CircuitBreaker:
    """Stops trying a dead Redis on every batch; probes it again after ``cooldown`` seconds."""

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.opened_at: float | None = None
        self.last_reason = ""

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def allow(self) -> bool:
        """True when a call may go through (closed, or open long enough for one probe)."""
        if self.opened_at is None:
            return True
        return deadline_clock() - self.opened_at >= self.cooldown

    def success(self) -> None:
        self.opened_at = None

    def failure(self, reason: str) -> None:
        self.opened_at = deadline_clock()
        self.last_reason = reason
