"""``python -m benchmarks [--quick] [--check] [--json PATH]``: the whole benchmark in one run.

Starts its own PostgreSQL (tests/support/postgres.py) and redis-server on
loopback, measures (1) the cost per tracked call on the caller's thread,
(2) end-to-end throughput of the batched pipeline against one rq job per
execution, (3) rq worker throughput per batch size; prints the tables and
checks the targets of issue 3. Exit code 0 unless ``--check`` and a target
failed. docs/performance.md and docs/capacity.md explain the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

import agentlog
from agentlog.migrations import upgrade
from agentlog.store import close_stores, get_store
from agentlog.transport import make_queue
from benchmarks import hotpath, throughput
from benchmarks.payload import PAYLOAD_BYTES
from benchmarks.servers import Blackhole, CpuMeter, RedisServer, refused_redis_url, start_postgres
from benchmarks.stats import linear_fit

console = Console(highlight=False)
if not console.is_terminal:
    console = Console(highlight=False, width=160)


@dataclass(frozen=True)
class Plan:
    rounds: int
    calls: int  # per round, for the in-memory scenarios
    slow_calls: int  # per round, for scenarios with a round trip per call
    warmup: int
    rate: float
    e2e_batched: int
    e2e_single: int
    batch_rows: dict[int, int]
    fork_rows: dict[int, int]
    two_worker_rows: int
    direct_rows: int


FULL = Plan(
    rounds=6,
    calls=2000,
    slow_calls=400,
    warmup=200,
    rate=2000.0,
    e2e_batched=15_000,
    e2e_single=1_500,
    batch_rows={1: 600, 10: 3_000, 100: 15_000, 500: 25_000},
    fork_rows={1: 300, 100: 10_000},
    two_worker_rows=15_000,
    direct_rows=10_000,
)
QUICK = Plan(
    rounds=1,
    calls=2000,
    slow_calls=300,
    warmup=100,
    rate=2000.0,
    e2e_batched=2_000,
    e2e_single=200,
    batch_rows={1: 150, 10: 500, 100: 3_000, 500: 5_000},
    fork_rows={1: 100, 100: 2_000},
    two_worker_rows=0,
    direct_rows=2_000,
)


@dataclass(frozen=True)
class Target:
    name: str
    measured: float
    threshold: float
    higher_is_better: bool
    unit: str = "x"
    note: str = ""

    @property
    def passed(self) -> bool:
        if self.higher_is_better:
            return self.measured >= self.threshold
        return self.measured <= self.threshold


def machine() -> dict[str, Any]:
    import psycopg
    import rq
    import sqlalchemy

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "rq": rq.__version__,
        "redis_py": redis.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "loadavg_start": os.getloadavg(),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def hot_path_table(results: dict[str, hotpath.ScenarioResult], rate: float) -> Table:
    base = results["none"].summary.median_us
    async_rq = results["async_rq"].summary.median_us
    table = Table(
        title=f"1. Cost per tracked call on the caller's thread (µs; paced at "
        f"{rate:.0f} calls/s; ~{PAYLOAD_BYTES} B payload)"
    )
    for column in (
        "scenario",
        "median",
        "p90",
        "p99",
        "mean",
        "overhead",
        "× async rq",
        "samples",
        "flusher in window",
    ):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for key, result in results.items():
        s = result.summary
        handed = (
            result.counter("enqueued", window=True)
            + result.counter("logged", window=True)
            + result.counter("spooled", window=True)
        )
        fallbacks = result.counter("fallbacks", window=True)
        flusher = "-"
        if key.startswith("async"):
            flusher = f"{handed} handed on"
            if fallbacks:
                flusher += f", {fallbacks} fallback batches"
            if result.jobs:
                rows = result.counter("enqueued") / result.jobs
                flusher += f"; {result.jobs} jobs of {rows:.0f}"
        table.add_row(
            result.scenario.label,
            f"{s.median_us:.2f}",
            f"{s.p90_us:.2f}",
            f"{s.p99_us:.2f}",
            f"{s.mean_us:.2f}",
            f"{s.median_us - base:.2f}",
            f"{_ratio(s.median_us, async_rq):.2f}",
            str(s.n),
            flusher,
        )
    return table


def e2e_table(runs: list[throughput.EndToEnd]) -> Table:
    table = Table(title="2. End-to-end: track() to committed rows in PostgreSQL, one rq worker")
    for column in (
        "design",
        "how",
        "executions",
        "jobs",
        "produce s",
        "drain s",
        "total s",
        "executions/s",
        "rows (distinct)",
        "failed jobs",
    ):
        table.add_column(column, justify="left" if column in ("design", "how") else "right")
    labels = {
        "batched": f"batched (async rq, batch {agentlog.Config().batch_size})",
        "single": "one job per execution (seed)",
    }
    for run in runs:
        how = (
            "pipelined: worker running meanwhile"
            if run.pipelined
            else "sequential: produce, then drain"
        )
        table.add_row(
            labels[run.design],
            how,
            str(run.executions),
            str(run.jobs),
            f"{run.produce_s:.2f}",
            f"{run.drain_s:.2f}",
            f"{run.total_s:.2f}",
            f"{run.per_second:,.0f}",
            f"{run.rows} ({run.distinct})",
            str(run.failed),
        )
    return table


def capacity_table(capacity: dict[str, Any]) -> Table:
    table = Table(
        title="3. rq worker throughput per batch size (PostgreSQL; timed until the queue is "
        "drained)"
    )
    for column in (
        "batch size",
        "workers",
        "worker class",
        "rows",
        "jobs",
        "seconds",
        "rows/s",
        "jobs/s",
        "ms/job",
        "all stored once",
    ):
        table.add_column(column, justify="right")
    for run in capacity["runs"]:
        ok = run.stored == run.rows == run.distinct and run.failed == 0
        table.add_row(
            str(run.batch_size),
            str(run.workers),
            "Worker (fork/job)" if run.fork else "SimpleWorker",
            str(run.rows),
            str(run.jobs),
            f"{run.seconds:.2f}",
            f"{run.rows_per_s:,.0f}",
            f"{run.jobs_per_s:,.1f}",
            f"{run.ms_per_job:.2f}",
            "yes" if ok else f"NO ({run.stored} rows, {run.distinct} ids, {run.failed} failed)",
        )
    return table


def cost_table(capacity: dict[str, Any]) -> Table:
    table = Table(title="3b. Where a row's cost goes (per execution; CPU from /proc)")
    for column in (
        "batch size",
        "workers",
        "worker CPU µs",
        "PostgreSQL CPU µs",
        "redis-server CPU µs",
        "Redis commands/job",
        "Redis bytes/job queued",
        "Redis bytes/execution",
        "app: to_wire µs",
        "app: enqueue µs",
    ):
        table.add_column(column, justify="right")
    for run in capacity["runs"]:
        table.add_row(
            str(run.batch_size),
            f"{run.workers}{' (fork)' if run.fork else ''}",
            f"{run.worker_cpu_s / run.rows * 1e6:,.0f}",
            f"{run.postgres_cpu_s / run.rows * 1e6:,.0f}",
            f"{run.redis_cpu_s / run.rows * 1e6:,.0f}",
            f"{run.redis_commands / run.jobs:,.1f}",
            f"{run.redis_bytes / run.jobs:,.0f}",
            f"{run.redis_bytes / run.rows:,.0f}",
            f"{run.to_wire_us:,.0f}",
            f"{run.enqueue_s / run.rows * 1e6:,.1f}",
        )
    return table


def fit(capacity: dict[str, Any]) -> tuple[float, float]:
    """Per-job fixed cost (ms) and per-row cost (µs) of one worker: t_job = a + b * rows."""
    single = [run for run in capacity["runs"] if run.workers == 1 and not run.fork]
    times = [run.ms_per_job for run in single]
    # Relative errors (weights 1/y²): batch sizes span 1..500, each point counts alike.
    a, b = linear_fit([run.batch_size for run in single], times, [1 / t**2 for t in times])
    return a, b * 1000


def targets(
    results: dict[str, hotpath.ScenarioResult], e2e: list[throughput.EndToEnd]
) -> list[Target]:
    med = {key: result.summary.median_us for key, result in results.items()}
    summaries = {key: result.summary for key, result in results.items()}
    by_design = {run.design: run for run in e2e if not run.pipelined}
    piped = {run.design: run for run in e2e if run.pipelined}

    def also(key: str) -> str:
        s, h = summaries[key], summaries["async_rq"]
        return f"mean {_ratio(s.mean_us, h.mean_us):.2f}x, p99 {_ratio(s.p99_us, h.p99_us):.2f}x"

    return [
        Target(
            "async rq hot path vs one rq enqueue per execution (median, x cheaper)",
            _ratio(med["seed"], med["async_rq"]),
            50,
            True,
            note=f"{med['seed']:.0f} µs vs {med['async_rq']:.1f} µs",
        ),
        Target(
            "async rq hot path vs sync SQLite insert (median, x cheaper)",
            _ratio(med["sync_sqlite"], med["async_rq"]),
            20,
            True,
            note=f"{med['sync_sqlite']:.0f} µs vs {med['async_rq']:.1f} µs",
        ),
        Target(
            "Redis refused: hot path / healthy hot path (median)",
            _ratio(med["async_rq_refused"], med["async_rq"]),
            2,
            False,
            note=also("async_rq_refused"),
        ),
        Target(
            "Redis blackholed: hot path / healthy hot path (median)",
            _ratio(med["async_rq_blackhole"], med["async_rq"]),
            2,
            False,
            note=also("async_rq_blackhole"),
        ),
        Target(
            "batched end-to-end throughput vs one job per execution (sequential)",
            _ratio(by_design["batched"].per_second, by_design["single"].per_second),
            50,
            True,
            note=f"{by_design['batched'].per_second:,.0f} vs "
            f"{by_design['single'].per_second:,.1f} executions/s",
        ),
        Target(
            "batched end-to-end throughput vs one job per execution (pipelined)",
            _ratio(piped["batched"].per_second, piped["single"].per_second),
            50,
            True,
            note=f"{piped['batched'].per_second:,.0f} vs "
            f"{piped['single'].per_second:,.1f} executions/s",
        ),
    ]


def targets_table(items: list[Target]) -> Table:
    table = Table(title="Targets (issue 3), measured in this run")
    for column in ("target", "measured", "required", "result", "detail"):
        table.add_column(column, justify="left" if column in ("target", "detail") else "right")
    for target in items:
        required = f"{'>=' if target.higher_is_better else '<='} {target.threshold:g}{target.unit}"
        result = "[green]PASS[/]" if target.passed else "[bold red]FAIL[/]"
        table.add_row(
            target.name, f"{target.measured:.2f}{target.unit}", required, result, target.note
        )
    return table


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {
            f.name: _jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in ("samples_ns", "segments")
        }
        for name in (
            "rows_per_s",
            "jobs_per_s",
            "ms_per_job",
            "per_second",
            "passed",
        ):
            if hasattr(value, name):
                data[name] = getattr(value, name)
        return data
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument(
        "--check", action="store_true", help="exit non-zero when a target is missed"
    )
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    parser.add_argument("--rate", type=float, help="tracked calls per second in part 1")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rate:
        plan = dataclasses.replace(plan, rate=args.rate)

    logging.getLogger("rq").setLevel(logging.WARNING)
    for var in ("AGENTLOG_MODE", "AGENTLOG_DATABASE_URL", "AGENTLOG_REDIS_URL", "AGENTLOG_QUEUE"):
        os.environ.pop(var, None)
    began = time.perf_counter()
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="agentlog-bench-"))
    postgres = redis_server = blackhole = None
    status = console.status("starting PostgreSQL and redis-server")
    status.start()

    def progress(message: str) -> None:
        status.update(f"{message}  [dim]({time.perf_counter() - began:.0f} s)[/]")

    try:
        postgres = start_postgres()
        postgres_url = postgres.create_database("agentlog_bench")
        upgrade(get_store(postgres_url).engine)
        redis_server = RedisServer().start()
        blackhole = Blackhole()
        blackhole_wait = blackhole.verify()
        connection = redis_server.client()
        logging_queue = make_queue(agentlog.Config(), connection)
        env = hotpath.Env(
            postgres_url=postgres_url,
            sqlite_url=f"sqlite:///{workdir / 'bench.db'}",
            redis_url=redis_server.url,
            refused_url=refused_redis_url(),
            blackhole_url=blackhole.url,
            spool_dir=workdir / "spool",
            flush_redis=connection.flushdb,
            queued_jobs=lambda: logging_queue.count,
        )
        info["postgres"] = "PostgreSQL 15 (fsync=off, synchronous_commit=off), loopback TCP"
        info["redis"] = connection.info("server")["redis_version"]

        hot = hotpath.run(
            env,
            rounds=plan.rounds,
            calls=plan.calls,
            slow_calls=plan.slow_calls,
            warmup=plan.warmup,
            rate=plan.rate,
            progress=progress,
        )
        blackhole_wait_after = blackhole.verify()

        e2e = []
        progress("starting the rq worker process")
        worker = throughput.WorkerProcess(env.redis_url, postgres_url, throughput.QUEUE)
        try:
            with hotpath.quiet_agentlog_logs():
                for pipelined in (False, True):
                    for design, n in (("batched", plan.e2e_batched), ("single", plan.e2e_single)):
                        how = "pipelined" if pipelined else "sequential"
                        progress(f"end-to-end, {how}: {design} ({n} executions)")
                        e2e.append(
                            throughput.end_to_end(
                                design,
                                n,
                                worker,
                                pipelined=pipelined,
                                redis_url=env.redis_url,
                                database_url=postgres_url,
                                spool_dir=env.spool_dir,
                                connection=connection,
                            )
                        )
                capacity = throughput.capacity(
                    plan.batch_rows,
                    plan.fork_rows,
                    plan.two_worker_rows,
                    plan.direct_rows,
                    worker,
                    redis_url=env.redis_url,
                    database_url=postgres_url,
                    spool_dir=env.spool_dir,
                    connection=connection,
                    meter=CpuMeter(postgres, redis_server),
                    progress=progress,
                )
        finally:
            worker.close()
    finally:
        status.stop()
        agentlog.shutdown(5)
        close_stores()
        if blackhole is not None:
            blackhole.close()
        if redis_server is not None:
            redis_server.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    info["loadavg_end"] = os.getloadavg()
    elapsed = time.perf_counter() - began
    console.print(
        f"[bold]agentlog benchmark[/] ({'quick' if args.quick else 'full'} run, "
        f"{elapsed:.0f} s): {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, "
        f"Linux {info['kernel']}, Python {info['python']}, rq {info['rq']}, "
        f"redis-py {info['redis_py']}, SQLAlchemy {info['sqlalchemy']}, "
        f"psycopg {info['psycopg']}, redis-server {info['redis']}, {info['postgres']}; "
        f"load average {info['loadavg_start'][0]:.2f} -> {info['loadavg_end'][0]:.2f}"
    )
    console.print(hot_path_table(hot, plan.rate))
    unreachable = [hot[k] for k in ("async_rq_refused", "async_rq_blackhole")]
    console.print(
        f"[dim]Blackhole check: a connect() to it hung {blackhole_wait * 1000:.0f} ms before and "
        f"{blackhole_wait_after * 1000:.0f} ms after part 1, until "
        f"the probe's timeout. Unreachable scenarios: breaker_cooldown="
        f"{hotpath.UNREACHABLE_BREAKER_COOLDOWN:g} s; fallback batches "
        + ", ".join(f"{r.scenario.label}: {r.counter('fallbacks')}" for r in unreachable)
        + ". Nothing spooled or dropped: "
        + str(all(r.counter("spooled") == 0 and r.counter("dropped") == 0 for r in hot.values()))
        + "[/]"
    )
    console.print(e2e_table(e2e))
    for run in e2e:
        if not (run.rows == run.distinct == run.executions and run.failed == 0):
            console.print(
                f"[bold red]End-to-end {run.design}: {run.rows} rows "
                f"({run.distinct} distinct) of {run.executions}, "
                f"{run.failed} failed jobs[/]"
            )
    console.print(capacity_table(capacity))
    console.print(cost_table(capacity))
    per_job_ms, per_row_us = fit(capacity)
    direct = capacity["direct"]
    console.print(
        f"[dim]One worker, fitted: time per job = {per_job_ms:.2f} ms + {per_row_us:.0f} µs x "
        f"rows (rq's fixed cost per job, then the insert per row). Store.insert_many alone, "
        f"no rq, batch {direct.batch_size}: {direct.rows_per_s:,.0f} rows/s.[/]"
    )
    checked = targets(hot, e2e)
    console.print(targets_table(checked))
    failed = [t for t in checked if not t.passed]

    if args.json:
        payload = {
            "plan": _jsonable(plan),
            "machine": info,
            "elapsed_s": elapsed,
            "payload_bytes": PAYLOAD_BYTES,
            "blackhole_connect_wait_s": blackhole_wait,
            "hot_path": {
                key: {
                    "label": r.scenario.label,
                    "meaning": r.scenario.meaning,
                    **_jsonable(r.summary),
                    "window": {n: r.counter(n, window=True) for n in agentlog.stats()},
                    "total": {n: r.counter(n) for n in agentlog.stats()},
                    "logs": dict(r.logs()),
                    "jobs": r.jobs,
                }
                for key, r in hot.items()
            },
            "end_to_end": _jsonable(e2e),
            "capacity": _jsonable(capacity),
            "fit": {"per_job_ms": per_job_ms, "per_row_us": per_row_us},
            "targets": _jsonable(checked),
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    if failed:
        console.print(f"[bold red]{len(failed)} target(s) missed.[/]")
        return 1 if args.check else 0
    console.print("[green]All targets met.[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
