"""``python -m benchmarks.probes``: where the time goes, piece by piece.

The main benchmark measures whole paths; this takes them apart, so that a
missed target points at a function and a number of microseconds:

A. the tracked call on the caller's thread, phase by phase, paced like the
   main benchmark (async rq mode against a real Redis);
B. the same pieces called back to back (warm caches), with ``timeit``;
C. what the flusher spends per record (``to_wire``: pricing, redaction, the
   rest), next to one alternative pricing built here, outside agentlog;
D. what a worker spends per job and per row (``Store.insert_many`` at several
   batch sizes, with the PostgreSQL backend's CPU time, rq's own cost per job,
   a Redis round trip), next to the previous INSERT statement
   (jsonb_populate_recordset), kept here to compare.
"""

from __future__ import annotations

import argparse
import collections
import contextvars
import datetime
import json
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import orjson
from rich.console import Console
from rich.table import Table
from rq import Queue, SimpleWorker
from sqlalchemy import text

import agentlog
from agentlog import runtime, tracking
from agentlog.clock import duration_clock, utcnow, wall_clock_ns
from agentlog.execution import Execution, new_id
from agentlog.jobs import JSONSerializer, log_executions
from agentlog.migrations import upgrade
from agentlog.ops.worker import PromptTeardown
from agentlog.pricing import Costs, compute_costs
from agentlog.schema import executions as table
from agentlog.serialize import to_columns, to_wire
from agentlog.store import CHUNK_SIZE, close_stores, get_store
from benchmarks.hotpath import _pace, quiet_agentlog_logs, timed_tracked_calls
from benchmarks.payload import (
    AGENT,
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    PARAMETERS,
    PROMPT,
    RESPONSE,
    TENANT,
    sample_execution,
)
from benchmarks.servers import RedisServer, start_postgres
from benchmarks.throughput import make_wires

perf_ns = time.perf_counter_ns
console = Console(highlight=False)
if not console.is_terminal:
    console = Console(highlight=False, width=160)


def _best_us(fn: Any, number: int = 5000, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def hot_path_phases(calls: int, rate: float) -> dict[str, float]:
    """Median µs of each phase of a paced tracked call (the pipeline must be configured)."""
    original = runtime.submit
    submit_ns: list[int] = []

    def timed_submit(execution: Execution) -> None:
        start = perf_ns()
        original(execution)
        submit_ns.append(perf_ns() - start)

    phases: dict[str, list[int]] = {
        k: []
        for k in (
            "track(...) constructor",
            "__enter__",
            "body (usage, response)",
            "__exit__ before submit",
            "runtime.submit (buffer put)",
            "whole call",
        )
    }
    runtime.submit = timed_submit
    try:
        wait = _pace(1.0 / rate)
        for i in range(calls + 300):
            wait()
            t0 = perf_ns()
            tracker = agentlog.track(
                AGENT, model=MODEL, parameters=PARAMETERS, prompt=PROMPT, tenant_id=TENANT
            )
            t1 = perf_ns()
            run = tracker.__enter__()
            t2 = perf_ns()
            run.usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS)
            run.response = RESPONSE
            t3 = perf_ns()
            tracker.__exit__(None, None, None)
            t4 = perf_ns()
            if i < 300:
                continue
            submitted = submit_ns[-1]
            for name, value in zip(
                phases,
                (t1 - t0, t2 - t1, t3 - t2, t4 - t3 - submitted, submitted, t4 - t0),
                strict=False,
            ):
                phases[name].append(value)
    finally:
        runtime.submit = original
    return {name: statistics.median(values) / 1000 for name, values in phases.items()}


class MinimalTrack:
    """The smallest context manager with ``track()``'s API and job (not agentlog's code).

    Keyword arguments into a record, a context variable, two clocks, a deque
    append; no error handling, nesting, buffer bound or flusher. A floor for
    what a pure-Python hot path of this shape costs on this machine.
    """

    __slots__ = ("_execution", "_start", "_token")
    current: ClassVar[contextvars.ContextVar[Any]] = contextvars.ContextVar("minimal")
    buffer: ClassVar[collections.deque[Execution]] = collections.deque()

    def __init__(self, agent: str, *, model: str | None = None, **fields: Any) -> None:
        fields["agent"] = agent
        fields["model"] = model
        self._execution = execution = object.__new__(Execution)
        execution.__dict__ = fields

    def __enter__(self) -> Execution:
        self._token = self.current.set(self._execution)
        self._start = time.perf_counter()
        return self._execution

    def __exit__(self, *exc_info: object) -> None:
        self._execution.__dict__["_finished"] = (time.perf_counter() - self._start, time.time_ns())
        self.current.reset(self._token)
        self.buffer.append(self._execution)


def minimal_track_paced(calls: int, rate: float) -> float:
    """Median µs of a paced call through ``MinimalTrack``, with part A's body."""
    samples = timed_tracked_calls(calls, rate, track=MinimalTrack)
    MinimalTrack.buffer.clear()
    return statistics.median(samples) / 1000


def hot_path_pieces() -> dict[str, float]:
    """Best-of-5 µs of each piece, called back to back (warm)."""
    execution = Execution(agent=AGENT, model=MODEL)
    pipeline = runtime.pipeline()
    var: contextvars.ContextVar[Any] = contextvars.ContextVar("probe", default=None)

    def tracked() -> None:
        with agentlog.track(
            AGENT, model=MODEL, parameters=PARAMETERS, prompt=PROMPT, tenant_id=TENANT
        ) as run:
            run.usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS)
            run.response = RESPONSE

    def contextvar_set_reset() -> None:
        var.reset(var.set(1))

    fields = {"parameters": PARAMETERS, "prompt": PROMPT, "tenant_id": TENANT}
    pieces: dict[str, Any] = {
        "whole tracked call": tracked,
        "track(...) constructor": lambda: agentlog.track(
            AGENT, model=MODEL, parameters=PARAMETERS, prompt=PROMPT, tenant_id=TENANT
        ),
        "  known-fields check": lambda: fields.keys() <= tracking._TRACKABLE,
        "clock.wall_clock_ns() (twice)": wall_clock_ns,
        "clock.duration_clock() (twice)": duration_clock,
        "flusher, not the caller: new_id()": new_id,
        "flusher, not the caller: clock.utcnow()": utcnow,
        "contextvar set + reset": contextvar_set_reset,
        "runtime.submit(execution)": lambda: runtime.submit(execution),
        "  Pipeline.put(execution)": lambda: pipeline.put(execution),
        "no logging: nullcontext + body": lambda: None,
    }
    tracked()
    result = {name: _best_us(fn) for name, fn in pieces.items()}
    pipeline._buffer.clear()  # the probe filled it without a flusher to empty it
    return result


class FlatRatePricing:
    """An alternative pricing (not agentlog's code): resolve a model's price once.

    ``genai_prices.calc_price`` re-derives the price from its snapshot on
    every call. For models priced flat per million tokens (no tiers), the
    cost is three multiplications once the rates are known; this caches the
    rates per (model, provider) and falls back to ``compute_costs`` for
    anything else. It must agree with ``compute_costs`` (checked below).
    """

    MILLION = Decimal(1_000_000)

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str | None], Any] = {}

    def __call__(
        self,
        model: str,
        provider: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_tokens: int | None,
    ) -> Any:
        rates = self._rates.get((model, provider))
        if rates is None:
            rates = self._rates[(model, provider)] = self._resolve(model, provider)
        if rates is False:
            return compute_costs(model, provider, input_tokens, output_tokens, cached_tokens)
        per_input, per_output, per_cached, provider_id = rates
        cached = cached_tokens or 0
        input_cost = (
            Decimal((input_tokens or 0) - cached) * per_input + Decimal(cached) * per_cached
        ) / self.MILLION
        output_cost = Decimal(output_tokens or 0) * per_output / self.MILLION
        return Costs(input_cost, output_cost, input_cost + output_cost, provider_id)

    @staticmethod
    def _resolve(model: str, provider: str | None) -> Any:
        import genai_prices

        try:
            result = genai_prices.calc_price(
                genai_prices.Usage(input_tokens=1, output_tokens=1), model, provider_id=provider
            )
        except LookupError:
            return False
        price = result.model_price
        rates = (price.input_mtok, price.output_mtok, price.cache_read_mtok)
        if not all(isinstance(rate, Decimal | None) for rate in rates):
            return False  # tiered prices: leave them to genai-prices
        per_input = rates[0] or Decimal(0)
        per_cached = rates[2] if rates[2] is not None else per_input
        return per_input, rates[1] or Decimal(0), per_cached, result.provider.id


def flusher_pieces(config: agentlog.Config) -> dict[str, float]:
    now = datetime.datetime.now(datetime.timezone.utc)
    execution = sample_execution(started_at=now, completed_at=now, duration_ms=900.0)
    unpriced = agentlog.configure(**{**_options(config), "compute_costs": False})
    redaction = config.redaction
    wire = to_wire(execution, config)
    chunk = [wire] * CHUNK_SIZE
    flat = FlatRatePricing()
    for usage in ((INPUT_TOKENS, OUTPUT_TOKENS, None), (812, 95, 300), (1, 0, None)):
        if flat(MODEL, None, *usage) != compute_costs(MODEL, None, *usage):
            raise AssertionError(f"FlatRatePricing disagrees with compute_costs for {usage}")
    return {
        "to_wire(execution) (default config)": _best_us(lambda: to_wire(execution, config), 500),
        "  pricing.compute_costs('gpt-4o', ...)": _best_us(
            lambda: compute_costs(MODEL, None, INPUT_TOKENS, OUTPUT_TOKENS, None), 500
        ),
        "  alternative: FlatRatePricing (cached rates)": _best_us(
            lambda: flat(MODEL, None, INPUT_TOKENS, OUTPUT_TOKENS, None), 5000
        ),
        "  redaction.apply(parameters, prompt, response)": _best_us(
            lambda: (
                redaction.apply(PARAMETERS),
                redaction.apply(PROMPT),
                redaction.apply(RESPONSE),
            ),
            500,
        ),
        "to_wire with compute_costs=False": _best_us(lambda: to_wire(execution, unpriced), 500),
        "orjson.dumps(wire) (the job payload)": _best_us(lambda: orjson.dumps(wire), 2000),
        "serialize.to_columns(125 wires) per wire (worker side)": _best_us(
            lambda: to_columns(chunk), 20
        )
        / len(chunk),
    }


def _options(config: agentlog.Config) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


class JsonbRecordsetInsert:
    """The previous write path (not agentlog's code any more): each chunk as one jsonb parameter.

    ``Store.insert_many`` sends one binary array per column and lets unnest()
    zip them into rows: PostgreSQL receives uuids, timestamps and numbers
    ready-made. This sends the rows as one JSON document, which is cheaper for
    the client (one orjson call) but which PostgreSQL parses in full and then
    converts value by value from text (jsonb_populate_recordset).
    """

    def __init__(self, database_url: str) -> None:
        self.store = get_store(database_url)
        columns = ", ".join(f'"{c.name}"' for c in table.columns if c.name != "logged_at")
        self.statement = text(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM "
            f"jsonb_populate_recordset(NULL::{table.name}, CAST(:batch AS jsonb)) "
            "ON CONFLICT (id) DO NOTHING RETURNING id"
        )

    def insert_many(self, wires: list[dict[str, Any]]) -> int:
        columns, _ = to_columns(wires)  # the same validation as agentlog's writer
        rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        batch = orjson.dumps(rows, default=str).decode()
        with self.store.engine.begin() as connection:
            return len(connection.execute(self.statement, {"batch": batch}).all())


def _backend_ns(pid: int) -> int:
    """CPU time a PostgreSQL backend (on this machine) has used, in ns (0 if unreadable)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def write_path(
    database_url: str, redis_url: str, config: agentlog.Config, rows: int
) -> dict[str, Any]:
    store = get_store(database_url)
    paths = {
        "insert": store.insert_many,
        "alternative": JsonbRecordsetInsert(database_url).insert_many,
    }
    # From here on the pool holds one connection: one backend whose CPU time to read.
    store.engine.dispose()
    with store.engine.connect() as db:
        backend = db.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    out: dict[str, Any] = {
        f"{key}_{unit}_per_row": {} for key in paths for unit in ("us", "backend_us")
    }
    for batch_size in (1, 100, 500):
        n = min(rows, 300) if batch_size == 1 else rows
        batches = {
            key: make_wires(n + batch_size, f"probe-{key}-{batch_size}", config)[0] for key in paths
        }
        samples: dict[str, list[tuple[float, float]]] = {key: [] for key in paths}
        for key, insert in paths.items():
            insert(batches[key][:batch_size])  # warm
        # Batch by batch in turn, so that drift on a shared machine hits both alike.
        for i in range(batch_size, n + batch_size, batch_size):
            for key, insert in paths.items():
                cpu, start = _backend_ns(backend), time.perf_counter()
                insert(batches[key][i : i + batch_size])
                wall, cpu = time.perf_counter() - start, _backend_ns(backend) - cpu
                samples[key].append((wall * 1e6 / batch_size, cpu / 1e3 / batch_size))
        for key, values in samples.items():
            out[f"{key}_us_per_row"][batch_size] = statistics.median(v[0] for v in values)
            out[f"{key}_backend_us_per_row"][batch_size] = statistics.median(v[1] for v in values)
    with store.engine.connect() as db:
        if db.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != backend:
            out["insert_backend_us_per_row"] = out["alternative_backend_us_per_row"] = {}
    probe_rows = store.executions(agent="probe-alternative-100", limit=1)
    out["alternative_rows_read_back"] = bool(probe_rows and probe_rows[0].total_cost is not None)

    import redis

    connection = redis.Redis.from_url(redis_url)
    connection.ping()
    start = time.perf_counter()
    for _ in range(1000):
        connection.ping()
    out["redis_round_trip_us"] = (time.perf_counter() - start) / 1000 * 1e6

    # rq's own cost per job: jobs of one row, minus the insert of one row.
    connection.flushdb()
    queue = Queue("probe", connection=connection, serializer=JSONSerializer)
    jobs = 200
    wires, _ = make_wires(jobs, "probe-rq", config)
    with connection.pipeline() as pipe:
        queue.enqueue_many(
            [
                Queue.prepare_data(log_executions, args=([w],), result_ttl=0, description="probe")
                for w in wires
            ],
            pipeline=pipe,
        )
        pipe.execute()
    drained: list[float] = []

    class Timed(PromptTeardown, SimpleWorker):
        def teardown(self) -> None:
            drained.append(time.perf_counter())
            super().teardown()  # type: ignore[no-untyped-call]

    worker = Timed([queue], connection=connection, serializer=JSONSerializer)
    start = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    out["rq_ms_per_one_row_job"] = (drained[0] - start) / jobs * 1000
    out["rq_overhead_ms_per_job"] = (
        out["rq_ms_per_one_row_job"] - out["insert_us_per_row"][1] / 1000
    )
    return out


def _table(title: str, rows: dict[str, float], unit: str = "µs") -> Table:
    t = Table(title=title)
    t.add_column("piece")
    t.add_column(unit, justify="right")
    for name, value in rows.items():
        t.add_row(name, f"{value:,.2f}")
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.probes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=6000, help="paced calls for part A")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--rows", type=int, default=3000, help="rows per batch size in part D")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    postgres = start_postgres()
    redis_server = RedisServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="agentlog-probes-"))
    try:
        database_url = postgres.create_database("agentlog_probes")
        upgrade(get_store(database_url).engine)
        with quiet_agentlog_logs():
            config = agentlog.configure(
                mode="async",
                database_url=database_url,
                redis_url=redis_server.url,
                spool_dir=workdir,
            )
            phases = hot_path_phases(args.calls, args.rate)
            phases["pure-Python floor: MinimalTrack, same body (not agentlog)"] = (
                minimal_track_paced(args.calls, args.rate)
            )
            agentlog.flush(60)
            agentlog.configure(
                mode="async",
                database_url=database_url,
                redis_url=redis_server.url,
                spool_dir=workdir,
                batch_size=10**6,
                buffer_size=10**7,
                flush_interval=3600.0,
            )
            pieces = hot_path_pieces()
            agentlog.shutdown(5)
            config = agentlog.configure(
                mode="sync",
                database_url=database_url,
                redis_url=redis_server.url,
                spool_dir=workdir,
            )
            flusher = flusher_pieces(config)
            config = agentlog.configure(
                mode="sync",
                database_url=database_url,
                redis_url=redis_server.url,
                spool_dir=workdir,
            )
            writes = write_path(database_url, redis_server.url, config, args.rows)
    finally:
        agentlog.shutdown(5)
        close_stores()
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    console.print(
        _table(
            f"A. Tracked call by phase, paced at {args.rate:.0f}/s, async rq "
            "(median µs; what runs first after a sleep pays for cold caches)",
            phases,
        )
    )
    console.print(_table("B. The same pieces back to back, warm (best of 5, µs per call)", pieces))
    console.print(_table("C. The flusher's cost per record (warm, µs)", flusher))
    d = Table(
        title="D. Write path per row (median µs over batches; PostgreSQL on loopback; "
        "server: the backend's CPU time)"
    )
    for column in (
        "batch size",
        "Store.insert_many",
        "  server",
        "alternative: jsonb_populate_recordset",
        "  server",
    ):
        d.add_column(column, justify="right")
    for batch_size in writes["insert_us_per_row"]:
        d.add_row(
            str(batch_size),
            *(
                "-" if (v := writes[key].get(batch_size)) is None else f"{v:,.0f}"
                for key in (
                    "insert_us_per_row",
                    "insert_backend_us_per_row",
                    "alternative_us_per_row",
                    "alternative_backend_us_per_row",
                )
            ),
        )
    console.print(d)
    console.print(
        f"Redis round trip (PING): {writes['redis_round_trip_us']:.0f} µs. One-row rq job: "
        f"{writes['rq_ms_per_one_row_job']:.2f} ms, of which rq itself (dequeue, registries, "
        f"heartbeats, cleanup) ~{writes['rq_overhead_ms_per_job']:.2f} ms."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"phases": phases, "pieces": pieces, "flusher": flusher, "write_path": writes},
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
