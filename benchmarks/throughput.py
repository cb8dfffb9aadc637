"""Parts 2 and 3: end-to-end throughput, and rq worker throughput per batch size.

Workers run in their own process (``benchmarks.worker``), started and warmed
up before the clock starts. End to end is measured two ways: sequential
(every ``track()`` and ``agentlog.flush()`` first, then the worker in burst
mode until the queue is empty; the two halves are reported apart) and
pipelined (the worker already running while records are produced; the clock
stops when PostgreSQL holds every row). Either way the time runs from the
first ``track()`` to the last committed row, and every measurement counts
its rows in PostgreSQL afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import delete, func, select

import agentlog
from agentlog import runtime
from agentlog.execution import new_id
from agentlog.jobs import JSONSerializer
from agentlog.schema import executions as table
from agentlog.serialize import to_wire
from agentlog.store import get_store
from agentlog.transport import RqTransport
from benchmarks.hotpath import seed_design
from benchmarks.payload import (
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    PARAMETERS,
    PROMPT,
    RESPONSE,
    TENANT,
    sample_execution,
)
from benchmarks.servers import CpuMeter

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "bench"
ROW_POLL_INTERVAL = 0.05
PIPELINE_BATCHES = 16  # batches per Redis round trip, as agentlog's flusher sends them


class WorkerProcess:
    def __init__(self, redis_url: str, database_url: str, queue: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", redis_url, database_url, queue],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"benchmark worker did not start (said {line!r})")

    def go(self, fork: bool = False) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go fork\n" if fork else "go\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, float]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("benchmark worker died")
        return dict(json.loads(line))

    def run(self) -> dict[str, float]:
        self.go()
        return self.result()

    def serve(self) -> None:
        """Start a long-running worker in the process (jobs are taken as they arrive)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("serve\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "serving":
            raise RuntimeError("benchmark worker did not start serving")

    def stop_serving(self) -> dict[str, float]:
        self.process.send_signal(signal.SIGTERM)
        return self.result()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def count_rows(database_url: str, agent: str) -> tuple[int, int]:
    """(rows, distinct ids) stored for ``agent``."""
    engine = get_store(database_url).engine
    with engine.connect() as connection:
        rows = connection.execute(
            select(func.count(), func.count(table.c.id.distinct())).where(table.c.agent == agent)
        ).one()
    return int(rows[0]), int(rows[1])


def delete_rows(database_url: str, agent: str) -> None:
    with get_store(database_url).engine.begin() as connection:
        connection.execute(delete(table).where(table.c.agent == agent))


def _queue(connection: redis.Redis, name: str) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def redis_commands(connection: redis.Redis) -> int:
    """Commands redis-server has run so far (INFO commandstats)."""
    stats = connection.info("commandstats")
    return sum(int(value["calls"]) for value in stats.values())


def failed_jobs(connection: redis.Redis, name: str) -> int:
    return len(FailedJobRegistry(queue=_queue(connection, name)))


def _tracked(n: int, agent: str) -> None:
    track = agentlog.track
    for _ in range(n):
        with track(
            agent, model=MODEL, parameters=PARAMETERS, prompt=PROMPT, tenant_id=TENANT
        ) as run:
            run.usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS)
            run.response = RESPONSE


@dataclass
class EndToEnd:
    design: str
    pipelined: bool
    executions: int
    jobs: int
    produce_s: float
    drain_s: float  # after the last track() and flush(), until the last row was committed
    worker_cpu_s: float
    total_s: float
    rows: int
    distinct: int
    failed: int

    @property
    def per_second(self) -> float:
        return self.executions / self.total_s


def wait_for_rows(database_url: str, agent: str, n: int, timeout: float = 600.0) -> float:
    """Poll PostgreSQL until ``n`` rows of ``agent`` are committed; returns when (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        if count_rows(database_url, agent)[0] >= n:
            return now
        if now > deadline:
            raise RuntimeError(f"only part of the {n} rows arrived within {timeout:.0f} s")
        time.sleep(ROW_POLL_INTERVAL)


def end_to_end(
    design: str,
    n: int,
    worker: WorkerProcess,
    *,
    pipelined: bool,
    redis_url: str,
    database_url: str,
    spool_dir: Path,
    connection: redis.Redis,
) -> EndToEnd:
    """``design`` is ``batched`` (async rq, default batch_size) or ``single`` (the seed's design:
    one rq job per execution, enqueued on the caller's thread).

    Sequential (``pipelined=False``): every ``track()`` and ``flush()`` first, then the
    worker drains the queue in burst mode; the end-to-end time is the sum of both.
    Pipelined: the worker is already running and takes jobs while they are produced;
    the time runs until the last row is committed (PostgreSQL polled every
    ``ROW_POLL_INTERVAL``).
    """
    agent = f"bench-e2e-{design}-{'pipelined' if pipelined else 'sequential'}"
    connection.flushdb()
    delete_rows(database_url, agent)
    if design == "batched":
        agentlog.configure(
            mode="async",
            database_url=database_url,
            redis_url=redis_url,
            queue_name=QUEUE,
            buffer_size=max(10_000, n + 1_000),
            spool_dir=spool_dir,
        )
        seed: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    else:
        config = agentlog.configure(
            mode="sync",
            database_url=database_url,
            redis_url=redis_url,
            queue_name=QUEUE,
            spool_dir=spool_dir,
        )
        seed = seed_design(config)
    enqueued_jobs: list[int] = []

    def count_jobs(jobs: list[Any]) -> None:
        enqueued_jobs.append(len(jobs))

    runtime.settings.on_enqueued.append(count_jobs)  # the flusher reports each round's jobs
    with seed:
        _tracked(200, "bench-e2e-warmup")  # warm both sides: connections, imports, schema
        agentlog.flush(30)
        worker.run()
        before = agentlog.stats()
        enqueued_jobs.clear()
        if pipelined:
            worker.serve()
            time.sleep(0.2)  # let it reach its blocking dequeue
        start = time.perf_counter()
        _tracked(n, agent)
        agentlog.flush(300)
        produced = time.perf_counter()
        jobs = n if design == "single" else sum(enqueued_jobs)
        if pipelined:
            done = wait_for_rows(database_url, agent, n)
            result = worker.stop_serving()
            drain_s = done - produced
        else:
            result = worker.run()
            drain_s = result["seconds"]
            done = produced + drain_s
    runtime.settings.on_enqueued.remove(count_jobs)
    after = agentlog.stats()
    agentlog.shutdown(10)
    if after.get("fallbacks", 0) != before.get("fallbacks", 0):
        raise RuntimeError("the end-to-end run fell back to sync writes: not a clean measurement")
    rows, distinct = count_rows(database_url, agent)
    return EndToEnd(
        design=design,
        pipelined=pipelined,
        executions=n,
        jobs=jobs,
        produce_s=produced - start,
        drain_s=drain_s,
        worker_cpu_s=result["cpu_seconds"],
        total_s=done - start,
        rows=rows,
        distinct=distinct,
        failed=failed_jobs(connection, QUEUE),
    )


def make_wires(
    n: int, agent: str, config: agentlog.Config, timed: int = 200
) -> tuple[list[dict[str, Any]], float]:
    """``n`` distinct serialized executions, and the seconds ``to_wire`` takes per execution.

    ``to_wire`` (redaction, pricing) runs for the first ``timed`` of them; the
    rest are copies with fresh ids. Every record gets its own user message and
    response text (the words of the sample shuffled), so that rq's zlib
    compression of job data and PostgreSQL see text as varied as real traffic,
    not one payload repeated.
    """
    now = datetime.now(timezone.utc)
    executions = []
    for i in range(min(n, timed)):
        execution = sample_execution(agent)
        execution.started_at = now - timedelta(milliseconds=900 + i % 50)
        execution.completed_at = now
        execution.duration_ms = 900.0 + i % 50
        executions.append(execution)
    start = time.perf_counter()
    wires = [to_wire(execution, config) for execution in executions]
    per_execution = (time.perf_counter() - start) / len(executions)
    template = wires[-1]
    for _ in range(n - len(wires)):
        identifier = str(new_id())
        wires.append({**template, "id": identifier, "trace_id": identifier})
    rng = random.Random(n)
    user_words = PROMPT[1]["content"].split()
    reply_words = RESPONSE["content"].split()
    for wire in wires:
        rng.shuffle(user_words)
        rng.shuffle(reply_words)
        wire["prompt"] = [PROMPT[0], {"role": "user", "content": " ".join(user_words)}]
        wire["response"] = {**RESPONSE, "content": " ".join(reply_words)}
    return wires, per_execution


@dataclass
class BatchRun:
    batch_size: int
    rows: int
    jobs: int
    workers: int
    seconds: float
    worker_cpu_s: float
    postgres_cpu_s: float
    redis_cpu_s: float
    to_wire_us: float
    enqueue_s: float
    redis_bytes: int
    job_key_bytes: int
    fork: bool  # rq's forking Worker (one work horse process per job) instead of SimpleWorker
    redis_commands: int  # commands redis-server ran while the workers drained the queue
    stored: int
    distinct: int
    failed: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds

    @property
    def ms_per_job(self) -> float:
        return self.seconds / self.jobs * 1000


def batch_run(
    batch_size: int,
    rows: int,
    workers: list[WorkerProcess],
    *,
    config: agentlog.Config,
    connection: redis.Redis,
    database_url: str,
    meter: CpuMeter,
    fork: bool = False,
) -> BatchRun:
    """Enqueue ``rows`` executions as jobs of ``batch_size`` (through agentlog's transport),
    then drain them with ``workers`` (all started at once) and time it."""
    agent = f"bench-capacity-b{batch_size}-w{len(workers)}{'-fork' if fork else ''}"
    delete_rows(database_url, agent)
    connection.flushdb()
    wires, to_wire_s_per_execution = make_wires(rows, agent, config)
    batches = [wires[i : i + batch_size] for i in range(0, rows, batch_size)]
    transport = RqTransport(config, connection)
    memory_before = int(connection.info("memory")["used_memory"])
    start = time.perf_counter()
    jobs = []
    for i in range(0, len(batches), PIPELINE_BATCHES):
        jobs.extend(transport.enqueue(batches[i : i + PIPELINE_BATCHES]))
    enqueue_s = time.perf_counter() - start
    redis_bytes = int(connection.info("memory")["used_memory"]) - memory_before
    job_key_bytes = int(connection.memory_usage(jobs[0].key, samples=0) or 0)
    pg_cpu, redis_cpu = meter.sample()
    commands = redis_commands(connection)
    for worker in workers:
        worker.go(fork)
    results = [worker.result() for worker in workers]
    # Until the last worker found the queue empty (a burst's exit is not part of the work).
    seconds = max(result["seconds"] for result in results)
    pg_cpu_after, redis_cpu_after = meter.sample()
    commands = redis_commands(connection) - commands - 2  # our own two INFO calls
    stored, distinct = count_rows(database_url, agent)
    return BatchRun(
        batch_size=batch_size,
        rows=rows,
        jobs=len(batches),
        workers=len(workers),
        seconds=seconds,
        worker_cpu_s=sum(r["cpu_seconds"] for r in results),
        postgres_cpu_s=pg_cpu_after - pg_cpu,
        redis_cpu_s=redis_cpu_after - redis_cpu,
        to_wire_us=to_wire_s_per_execution * 1e6,
        enqueue_s=enqueue_s,
        redis_bytes=redis_bytes,
        job_key_bytes=job_key_bytes,
        fork=fork,
        redis_commands=commands,
        stored=stored,
        distinct=distinct,
        failed=failed_jobs(connection, config.queue_name),
    )


@dataclass
class DirectInsert:
    rows: int
    batch_size: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def direct_insert(
    rows: int, batch_size: int, *, config: agentlog.Config, database_url: str
) -> DirectInsert:
    """``Store.insert_many`` alone (no rq): the ceiling of the write path in one process."""
    agent = f"bench-direct-b{batch_size}"
    delete_rows(database_url, agent)
    wires, _ = make_wires(rows, agent, config)
    store = get_store(database_url)
    store.insert_many(make_wires(1, "bench-warmup", config)[0])
    start = time.perf_counter()
    for i in range(0, rows, batch_size):
        store.insert_many(wires[i : i + batch_size])
    return DirectInsert(rows, batch_size, time.perf_counter() - start)


def capacity(
    batch_rows: dict[int, int],
    fork_rows: dict[int, int],
    two_worker_rows: int,
    direct_rows: int,
    worker: WorkerProcess,
    *,
    redis_url: str,
    database_url: str,
    spool_dir: Path,
    connection: redis.Redis,
    meter: CpuMeter,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    config = agentlog.configure(
        mode="sync",
        database_url=database_url,
        redis_url=redis_url,
        queue_name=QUEUE,
        spool_dir=spool_dir,
    )
    runs: list[BatchRun] = []
    workers = [worker]
    run = functools.partial(
        batch_run,
        workers=workers,
        config=config,
        connection=connection,
        database_url=database_url,
        meter=meter,
    )
    try:
        for fork, label, sizes in (
            (False, "worker throughput", batch_rows),
            (True, "forking worker", fork_rows),
        ):
            for batch_size, rows in sizes.items():
                progress(f"{label}, batch size {batch_size} ({rows} rows)")
                runs.append(run(batch_size, rows, fork=fork))
        if two_worker_rows:
            progress(f"two workers, batch size 100 ({two_worker_rows} rows)")
            workers.append(WorkerProcess(redis_url, database_url, QUEUE))
            run(10, 50)  # warms the second worker up
            runs.append(run(100, two_worker_rows))
    finally:
        for extra in workers[1:]:
            extra.close()
    progress(f"direct Store.insert_many, batch size 500 ({direct_rows} rows)")
    direct = direct_insert(direct_rows, 500, config=config, database_url=database_url)
    agentlog.shutdown(10)
    return {"runs": runs, "direct": direct, "cpu_count": os.cpu_count()}
