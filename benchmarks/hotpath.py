"""Part 1: what one tracked call costs on the caller's thread, in every mode.

Each sample is the time from entering ``agentlog.track(...)`` (the call that
builds the context manager included) to the ``with`` block's exit, with the
same body in every scenario. Calls are paced (``rate`` per second, sleeping
between calls like an agent waiting on its LLM) so that in the async modes
the flusher thread batches, serializes and hands on records *while* the
caller is being measured, the situation an application is in. Scenarios run
in rounds, interleaved, and their samples are pooled, so slow drift of this
shared machine hits every scenario alike. ``agentlog.flush()`` runs after
each timed segment, outside the timed region.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from rq import Retry as RqRetry

import agentlog
from agentlog import runtime
from agentlog.execution import Execution
from agentlog.jobs import log_executions
from agentlog.serialize import to_wire
from agentlog.transport import connect_redis, make_queue
from benchmarks.payload import (
    AGENT,
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    PARAMETERS,
    PROMPT,
    RESPONSE,
    TENANT,
    NoLog,
)
from benchmarks.stats import Summary

perf_ns = time.perf_counter_ns
UNREACHABLE_BREAKER_COOLDOWN = 1.0


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    meaning: str
    slow: bool = False  # a database or Redis round trip per call: fewer samples


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("none", "no logging", "bare `with contextlib.nullcontext()` and the same body"),
    Scenario(
        "async_rq",
        "async rq (real Redis)",
        "mode=async, redis_url set: buffer append; flusher enqueues batches of 100 to rq",
    ),
    Scenario(
        "async_rq_refused",
        "async rq, Redis refused",
        "redis_url points at a loopback port nobody listens on: the flusher's enqueue "
        "fails, the breaker opens, batches fall back to a sync insert into PostgreSQL",
    ),
    Scenario(
        "async_rq_blackhole",
        "async rq, Redis blackholed",
        "redis_url points at a loopback listener whose accept queue is full: SYNs are "
        "dropped, connect() hangs until redis_timeout (0.2 s); then the same fallback",
    ),
    Scenario(
        "async_local",
        "async local (SQLite)",
        "mode=async, no redis_url: the flusher thread inserts batches into a SQLite file",
    ),
    Scenario(
        "sync_sqlite",
        "sync SQLite",
        "mode=sync: redact, serialize and INSERT into a "
        "SQLite file (WAL) on the caller's thread, one transaction per call",
        slow=True,
    ),
    Scenario(
        "sync_pg",
        "sync PostgreSQL",
        "mode=sync: the same into PostgreSQL over TCP "
        "loopback (server runs fsync=off, synchronous_commit=off)",
        slow=True,
    ),
    Scenario(
        "seed",
        "seed design: rq enqueue/call",
        "the seed's design: on the caller's thread, to_wire() then one rq "
        "Queue.enqueue(agentlog.jobs.log_executions, [wire]) per execution "
        "(same JSON serializer and job options as agentlog's transport)",
        slow=True,
    ),
)
BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}


@dataclass
class Segment:
    samples_ns: list[int]
    wall_s: float
    stats_window: dict[str, int]  # counters that moved while the caller was being timed
    stats_total: dict[str, int]  # counters after the flush
    log_records: Counter[str]
    jobs: int  # rq jobs the timed calls became on the live Redis (after the flush)


@dataclass
class ScenarioResult:
    scenario: Scenario
    samples_ns: list[int] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)

    @property
    def summary(self) -> Summary:
        return Summary.of_ns(self.samples_ns)

    def counter(self, name: str, *, window: bool = False) -> int:
        return sum(
            (s.stats_window if window else s.stats_total).get(name, 0) for s in self.segments
        )

    @property
    def jobs(self) -> int:
        return sum(s.jobs for s in self.segments)

    def logs(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for segment in self.segments:
            total.update(segment.log_records)
        return total


class _CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()
        self.last: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1
        self.last[record.levelname] = record.getMessage()[:200]


@contextlib.contextmanager
def quiet_agentlog_logs() -> Iterator[_CountingHandler]:
    """Count agentlog's log lines instead of printing them (fallback warnings per batch)."""
    logger = logging.getLogger("agentlog")
    handler = _CountingHandler()
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.handlers, logger.propagate, _ = saved
        logger.setLevel(saved[2])


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }


class SeedSubmit:
    """The seed's design, swapped in for ``agentlog.runtime.submit`` so that the
    record is built by the very same ``track()``: serialize, then one rq
    ``Queue.enqueue`` per execution, on the caller's thread."""

    def __init__(self, config: agentlog.Config, connection: redis.Redis) -> None:
        self.config = config
        self.queue = make_queue(config, connection)
        retries = config.retry.attempts - 1
        self.retry = RqRetry(max=retries, interval=round(config.retry.wait)) if retries else None

    def __call__(self, execution: Execution) -> None:
        wire = to_wire(execution, self.config)
        self.queue.enqueue(
            log_executions,
            [wire],
            job_timeout=int(self.config.job_timeout),
            retry=self.retry,
            description="agentlog.jobs.log_executions(1 executions)",
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
        )


@contextlib.contextmanager
def seed_design(config: agentlog.Config) -> Iterator[SeedSubmit]:
    connection = connect_redis(config)
    submit = SeedSubmit(config, connection)
    original = runtime.submit
    runtime.submit = submit
    try:
        yield submit
    finally:
        runtime.submit = original
        connection.close()


def _pace(interval: float) -> Callable[[], None]:
    next_at = time.perf_counter()

    def wait() -> None:
        nonlocal next_at
        next_at += interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -interval:
            next_at = time.perf_counter()  # behind (a slow scenario): no catch-up burst

    return wait


def timed_tracked_calls(
    n: int, rate: float, agent: str = AGENT, track: Callable[..., Any] = agentlog.track
) -> list[int]:
    """Nanoseconds of each of ``n`` paced calls through ``track`` (agentlog's by default)."""
    samples = [0] * n
    wait = _pace(1.0 / rate)
    for i in range(n):
        wait()
        start = perf_ns()
        with track(
            agent, model=MODEL, parameters=PARAMETERS, prompt=PROMPT, tenant_id=TENANT
        ) as run:
            run.usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS)
            run.response = RESPONSE
        samples[i] = perf_ns() - start
    return samples


def timed_untracked_calls(n: int, rate: float) -> list[int]:
    samples = [0] * n
    wait = _pace(1.0 / rate)
    nullcontext = contextlib.nullcontext
    for i in range(n):
        wait()
        start = perf_ns()
        with nullcontext(NoLog()) as run:
            run.usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS)
            run.response = RESPONSE
        samples[i] = perf_ns() - start
    return samples


@dataclass
class Env:
    postgres_url: str
    sqlite_url: str
    redis_url: str
    refused_url: str
    blackhole_url: str
    spool_dir: Path
    flush_redis: Callable[[], object]
    queued_jobs: Callable[[], int]  # jobs waiting on the live Redis's logging queue


def _configure(key: str, env: Env) -> agentlog.Config | None:
    common: dict[str, Any] = {"spool_dir": env.spool_dir}
    if key == "none":
        return None
    if key == "sync_sqlite":
        return agentlog.configure(mode="sync", database_url=env.sqlite_url, **common)
    if key == "sync_pg":
        return agentlog.configure(mode="sync", database_url=env.postgres_url, **common)
    if key == "async_local":
        return agentlog.configure(mode="async", database_url=env.sqlite_url, **common)
    redis_url = {
        "async_rq": env.redis_url,
        "async_rq_refused": env.refused_url,
        "async_rq_blackhole": env.blackhole_url,
        "seed": env.redis_url,
    }[key]
    mode = "sync" if key == "seed" else "async"
    if key in ("async_rq_refused", "async_rq_blackhole"):
        # Probe the dead Redis every second (default: every 5 s), so that every timed
        # window holds several probes and fallbacks, not just the one at its start.
        common["breaker_cooldown"] = UNREACHABLE_BREAKER_COOLDOWN
    return agentlog.configure(
        mode=mode, database_url=env.postgres_url, redis_url=redis_url, **common
    )


def run_segment(
    key: str, env: Env, n: int, warmup: int, rate: float, handler: _CountingHandler
) -> Segment:
    config = _configure(key, env)
    env.flush_redis()
    with contextlib.ExitStack() as stack:
        if key == "seed":
            assert config is not None
            stack.enter_context(seed_design(config))
        if key == "none":
            timed_untracked_calls(warmup, rate)
        else:
            timed_tracked_calls(warmup, rate, agent="bench-warmup")
            agentlog.flush(30)
        handler.counts.clear()
        jobs_before = env.queued_jobs()
        before = agentlog.stats()
        started = time.perf_counter()
        samples = timed_untracked_calls(n, rate) if key == "none" else timed_tracked_calls(n, rate)
        wall = time.perf_counter() - started
        window = _diff(agentlog.stats(), before)
        if key != "none":
            agentlog.flush(60)  # outside the timed region
        total = _diff(agentlog.stats(), before)
        logs = Counter(handler.counts)
        jobs = env.queued_jobs() - jobs_before
    return Segment(samples, wall, window, total, logs, jobs)


def run(
    env: Env,
    *,
    rounds: int,
    calls: int,
    slow_calls: int,
    warmup: int,
    rate: float,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, ScenarioResult]:
    results = {s.key: ScenarioResult(s) for s in SCENARIOS}
    with quiet_agentlog_logs() as handler:
        try:
            for round_number in range(rounds):
                for scenario in SCENARIOS:
                    n = slow_calls if scenario.slow else calls
                    progress(
                        f"hot path round {round_number + 1}/{rounds}: {scenario.label} ({n} calls)"
                    )
                    segment = run_segment(scenario.key, env, n, warmup, rate, handler)
                    result = results[scenario.key]
                    result.segments.append(segment)
                    result.samples_ns.extend(segment.samples_ns)
        finally:
            agentlog.shutdown(10)
    return results
