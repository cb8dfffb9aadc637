"""An rq worker process driven by the benchmark over stdin/stdout.

``python -m benchmarks.worker REDIS_URL DATABASE_URL QUEUE``: imports and
configures everything, prints ``ready``, then for each ``go`` line runs an rq
``SimpleWorker(..., serializer=agentlog.jobs.JSONSerializer).work(burst=True)``
on the queue (``go fork``: rq's forking ``Worker``, the default of
``agentlog worker``) and prints one JSON line: ``seconds`` from the start of the
burst until the queue was drained (the worker's last job done), ``burst_seconds``
until ``work()`` returned, and the CPU seconds of this process over the
burst. ``serve`` runs a long-running (non-burst) worker until the process
gets SIGTERM (rq's warm shutdown), then prints its CPU seconds. ``quit`` (or
EOF) ends it.

Start-up and the exit of a burst are kept out of ``seconds``: a burst
worker's teardown may wait up to ``PUBSUB_WAIT`` (a second) for its pubsub
thread, a cost a long-running worker never pays per job.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time

import redis
from rq import Queue, SimpleWorker, Worker

import agentlog
from agentlog import jobs
from agentlog.jobs import JSONSerializer
from agentlog.ops.worker import PromptTeardown


class DrainTimedWorker(PromptTeardown, SimpleWorker):
    """A ``SimpleWorker`` that notes when its burst found the queue empty."""

    drained_at = 0.0

    def teardown(self) -> None:
        self.drained_at = time.perf_counter()
        super().teardown()  # type: ignore[no-untyped-call]


class DrainTimedForkingWorker(PromptTeardown, Worker):
    """rq's default ``Worker`` (a forked work horse per job), timed the same way."""

    drained_at = 0.0

    def teardown(self) -> None:
        self.drained_at = time.perf_counter()
        super().teardown()  # type: ignore[no-untyped-call]


def cpu_seconds() -> float:
    """CPU of this process and of its finished children (a forking worker's work horses)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main(argv: list[str]) -> int:
    redis_url, database_url, queue_name = argv
    agentlog.configure(
        mode="sync", database_url=database_url, redis_url=redis_url, queue_name=queue_name
    )
    logging.getLogger("rq").setLevel(logging.WARNING)
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command == "serve":
            # A long-running worker, until the benchmark sends SIGTERM (rq's warm shutdown).
            worker = DrainTimedWorker([queue], connection=connection, serializer=JSONSerializer)
            cpu = time.process_time()
            print("serving", flush=True)
            worker.work(burst=False, logging_level="WARNING")
            print(json.dumps({"cpu_seconds": time.process_time() - cpu}), flush=True)
            continue
        if command not in ("go", "go fork"):
            continue
        burst_worker: DrainTimedWorker | DrainTimedForkingWorker
        if command == "go fork":
            jobs.prepare_worker()  # what `agentlog worker` does before forking work horses
            burst_worker = DrainTimedForkingWorker(
                [queue], connection=connection, serializer=JSONSerializer
            )
        else:
            burst_worker = DrainTimedWorker(
                [queue], connection=connection, serializer=JSONSerializer
            )
        start, cpu = time.perf_counter(), cpu_seconds()
        burst_worker.work(burst=True, logging_level="WARNING")
        end, cpu = time.perf_counter(), cpu_seconds() - cpu
        print(
            json.dumps(
                {
                    "seconds": (burst_worker.drained_at or end) - start,
                    "burst_seconds": end - start,
                    "cpu_seconds": cpu,
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
