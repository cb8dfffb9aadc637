"""Handing batches to rq over Redis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from rq import Queue
from rq import Retry as RqRetry

from agentlog.config import Config
from agentlog.jobs import BatchJob, JSONSerializer, log_executions
from agentlog.redis_client import RedisFactory, connect_redis
from agentlog.serialize import Wire

__all__ = ["RedisFactory", "RqTransport", "connect_redis", "make_queue"]


def make_queue(config: Config, connection: redis.Redis) -> Queue:
    return Queue(
        config.queue_name, connection=connection, serializer=JSONSerializer, job_class=BatchJob
    )


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
