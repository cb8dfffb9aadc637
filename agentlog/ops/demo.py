"""``agentlog demo``: a simulated agent workload, logged in sync and in async mode.

Several agents on several models make calls with simulated latency (scaled
down so the whole demo takes seconds), tokens, some errors and timeouts, and
an API key planted in some parameters and prompts. Each call is tracked with
``agentlog.track``; the time agentlog takes on the caller's thread is the
time around the ``with`` block minus the simulated work inside it. The rows
are then read back from the database and summarized, and searched for the
planted key.
"""

from __future__ import annotations

import math
import random
import secrets
import shutil
import string
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.engine import make_url

import agentlog
from agentlog.execution import Execution
from agentlog.migrations import upgrade
from agentlog.ops.context import safe_url
from agentlog.ops.worker import build_worker
from agentlog.pricing import compute_costs
from agentlog.store import get_store

DEFAULT_CALLS = 250
FLUSH_TIMEOUT = 60.0
# Real LLM calls take ~0.3-5 s; the demo sleeps ~1/100 of that.
LATENCY_SCALE = 100


class RateLimitError(Exception):
    """What a provider's SDK raises on HTTP 429 (simulated)."""


class ContextLengthError(Exception):
    """What a provider's SDK raises when the prompt is too long (simulated)."""


@dataclass(frozen=True)
class AgentProfile:
    name: str
    model: str
    weight: int
    latency_ms: float  # median of the simulated latency, already scaled down
    input_tokens: tuple[int, int]
    output_tokens: tuple[int, int]
    error_rate: float
    timeout_rate: float
    system_prompt: str
    prompts: tuple[str, ...]
    key_in_parameters: float = 0.0  # share of calls that pass the planted key as api_key
    key_in_prompt: float = 0.0  # share of calls whose prompt contains the planted key


PROFILES: tuple[AgentProfile, ...] = (
    AgentProfile(
        "support-bot",
        "gpt-4o",
        4,
        16,
        (600, 2400),
        (80, 420),
        0.04,
        0.02,
        "You are Acme Cloud's support agent. Be brief and cite the docs.",
        (
            "My deploy fails with exit code 137, why?",
            "How do I rotate my access keys?",
            "Can I move my database to another region?",
            "Why was I billed twice in May?",
        ),
        key_in_parameters=0.15,
    ),
    AgentProfile(
        "summarizer",
        "claude-sonnet-4-5",
        2,
        28,
        (2500, 9000),
        (150, 600),
        0.02,
        0.03,
        "Summarize the document in five bullet points.",
        (
            "Summarize this incident report: ...",
            "Summarize the meeting transcript: ...",
            "Summarize the quarterly report: ...",
        ),
    ),
    AgentProfile(
        "router",
        "gpt-4o-mini",
        5,
        5,
        (150, 500),
        (3, 16),
        0.01,
        0.0,
        "Classify the request: billing, technical, sales or other. Answer with one word.",
        (
            "I want to upgrade my plan",
            "The API returns 500 errors",
            "Invoice is wrong",
            "Do you have an on-prem edition?",
        ),
    ),
    AgentProfile(
        "code-reviewer",
        "claude-3-5-haiku-latest",
        2,
        20,
        (1500, 6000),
        (200, 900),
        0.05,
        0.02,
        "Review the diff. Point out bugs and security problems.",
        (
            "Review: def retry(fn): ...",
            "Review: SELECT * FROM users WHERE id = ' + id",
            'Review: client = OpenAI(api_key="{key}")  # why does this fail?',
        ),
        key_in_prompt=1.0,  # applies to the prompt that has the {key} slot
    ),
)


@dataclass
class ModeRun:
    mode: str
    overheads: list[float] = field(default_factory=list)  # seconds, one per call
    ids: list[Any] = field(default_factory=list)
    flush_seconds: float = 0.0
    stored: int = 0


@dataclass
class AgentSummary:
    agent: str
    model: str
    calls: int
    errors: int
    p50_ms: float
    p95_ms: float
    tokens: int
    cost: Decimal

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass
class RedactionCheck:
    secret: str
    planted_in_parameters: int
    planted_in_prompts: int
    rows_searched: int
    rows_with_secret: int
    stored_parameter: Any = None
    stored_prompt: str | None = None

    @property
    def ok(self) -> bool:
        return self.rows_searched > 0 and self.rows_with_secret == 0


@dataclass
class DemoResult:
    database_url: str
    redis_url: str | None
    calls_per_mode: int
    runs: list[ModeRun]
    agents: list[AgentSummary]
    redaction: RedactionCheck
    seconds: float
    migrated: bool
    total_rows: int
    spool_left: int

    @property
    def ok(self) -> bool:
        stored = all(run.stored == len(run.ids) for run in self.runs)
        return stored and self.redaction.ok and not self.spool_left


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def plant_secret() -> str:
    alphabet = string.ascii_letters + string.digits
    return "sk-proj-" + "".join(secrets.choice(alphabet) for _ in range(40))


class Workload:
    """Draws simulated calls; deterministic for a seed (but for the secret)."""

    def __init__(self, seed: int, secret: str) -> None:
        self.rng = random.Random(seed)
        self.secret = secret
        self.planted_in_parameters = 0
        self.planted_in_prompts = 0

    def call(self, mode: str) -> tuple[float, Any]:
        """Make one tracked call; returns the seconds agentlog took on this thread, and its id."""
        rng = self.rng
        profile = rng.choices(PROFILES, weights=[p.weight for p in PROFILES])[0]
        median = profile.latency_ms
        latency = min(rng.lognormvariate(math.log(median), 0.45), 6 * median)
        parameters: dict[str, Any] = {
            "temperature": rng.choice((0.0, 0.2, 0.7)),
            "max_tokens": rng.choice((256, 1024, 4096)),
        }
        if rng.random() < profile.key_in_parameters:
            parameters["api_key"] = self.secret
            self.planted_in_parameters += 1
        text = rng.choice(profile.prompts)
        if "{key}" in text:
            text = text.format(key=self.secret)
            self.planted_in_prompts += 1
        fields: dict[str, Any] = {
            "parameters": parameters,
            "system_prompt": profile.system_prompt,
            "prompt": [{"role": "user", "content": text}],
            "tenant_id": rng.choice(("acme", "globex", "initech")),
            "metadata": {"demo": True, "mode": mode},
        }
        draw = rng.random()
        tokens_in = rng.randint(*profile.input_tokens)
        tokens_out = rng.randint(*profile.output_tokens)
        work = 0.0
        started = time.perf_counter()
        tracker = agentlog.track(profile.name, model=profile.model, **fields)
        try:
            with tracker as run:
                work_started = time.perf_counter()
                try:
                    self._simulate(run, draw, profile, latency, tokens_in, tokens_out)
                finally:
                    work = time.perf_counter() - work_started
        except (RateLimitError, ContextLengthError, TimeoutError):
            pass  # the agent's own error: recorded by track(), handled by the app
        return time.perf_counter() - started - work, tracker.execution.id

    @staticmethod
    def _simulate(
        run: Execution,
        draw: float,
        profile: AgentProfile,
        latency_ms: float,
        tokens_in: int,
        tokens_out: int,
    ) -> None:
        if draw < profile.timeout_rate:
            time.sleep(latency_ms * 3 / 1000)
            raise TimeoutError(f"{profile.model} did not answer within 30s")
        if draw < profile.timeout_rate + profile.error_rate:
            time.sleep(latency_ms / 4000)
            if tokens_in > profile.input_tokens[1] * 0.9:
                raise ContextLengthError(
                    f"maximum context length exceeded ({tokens_in * 40} tokens requested)"
                )
            raise RateLimitError(f"429 Too Many Requests: rate limit reached for {profile.model}")
        time.sleep(latency_ms / 1000)
        run.usage(input_tokens=tokens_in, output_tokens=tokens_out)
        run.finish_reason = "length" if tokens_out > profile.output_tokens[1] * 0.95 else "stop"
        run.response = {"role": "assistant", "content": f"({tokens_out} tokens of answer)"}


def _summaries(rows: Sequence[Execution]) -> list[AgentSummary]:
    by_agent: dict[str, list[Execution]] = {}
    for row in rows:
        by_agent.setdefault(row.agent, []).append(row)
    summaries = []
    for agent in sorted(by_agent):
        group = by_agent[agent]
        durations = [row.duration_ms for row in group if row.duration_ms is not None]
        summaries.append(
            AgentSummary(
                agent=agent,
                model=", ".join(sorted({row.model or "?" for row in group})),
                calls=len(group),
                errors=sum(1 for row in group if row.status != "success"),
                p50_ms=percentile(durations, 0.50),
                p95_ms=percentile(durations, 0.95),
                tokens=sum(row.total_tokens or 0 for row in group),
                cost=sum((Decimal(str(row.total_cost or 0)) for row in group), Decimal(0)),
            )
        )
    return summaries


def _check_redaction(rows: Sequence[Execution], workload: Workload) -> RedactionCheck:
    secret = workload.secret
    check = RedactionCheck(
        secret=secret,
        planted_in_parameters=workload.planted_in_parameters,
        planted_in_prompts=workload.planted_in_prompts,
        rows_searched=len(rows),
        rows_with_secret=0,
    )
    for row in rows:
        stored = orjson.dumps(row.to_dict(), default=str).decode()
        if secret in stored:
            check.rows_with_secret += 1
        if (
            check.stored_parameter is None
            and isinstance(row.parameters, dict)
            and "api_key" in row.parameters
        ):
            check.stored_parameter = row.parameters["api_key"]
        if check.stored_prompt is None and row.agent == "code-reviewer" and row.prompt:
            content = str(row.prompt[0].get("content", "")) if isinstance(row.prompt, list) else ""
            if "OpenAI(" in content:
                check.stored_prompt = content
    return check


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<44}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=5,
    )


def run_demo(
    database_url: str,
    redis_url: str | None,
    queue_name: str | None,
    *,
    calls: int = DEFAULT_CALLS,
    seed: int = 7,
    console: Console,
) -> DemoResult:
    began = time.perf_counter()
    spool_dir = Path(tempfile.mkdtemp(prefix="agentlog-demo-spool-"))
    common: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "spool_dir": spool_dir,
    }
    if queue_name:
        common["queue_name"] = queue_name
    store = get_store(database_url)
    # Set up before measuring: the schema (SQLite would create it on the first
    # write anyway) and the price list (loaded on first use, ~0.3 s).
    migrated = False
    if store.dialect != "sqlite":
        from agentlog.migrations import current_revision, head_revision

        migrated = current_revision(store.engine) != head_revision()
    upgrade(store.engine)
    compute_costs("gpt-4o", None, 1, 1, None)

    workload = Workload(seed, plant_secret())
    runs = [ModeRun("sync"), ModeRun("async")]
    with _progress(console) as progress:
        labels = {
            "sync": "sync: written on the caller's thread",
            "async": "async: buffered, written by "
            + ("rq workers" if redis_url else "a background thread"),
        }
        tasks = {
            run.mode: progress.add_task(labels[run.mode], total=calls, start=False) for run in runs
        }
        for run in runs:
            config = agentlog.configure(mode=run.mode, **common)
            progress.start_task(tasks[run.mode])
            for _ in range(calls):
                overhead, execution_id = workload.call(run.mode)
                run.overheads.append(overhead)
                run.ids.append(execution_id)
                progress.advance(tasks[run.mode])
            flush_started = time.perf_counter()
            agentlog.flush(FLUSH_TIMEOUT)
            run.flush_seconds = time.perf_counter() - flush_started
        if redis_url:
            drain = progress.add_task("rq worker (burst): writing the queued jobs", total=None)
            _drain_queue(config)
            progress.update(drain, total=1, completed=1)
    agentlog.shutdown(FLUSH_TIMEOUT)
    rows = store.executions(ids=[id_ for run in runs for id_ in run.ids])
    stored_ids = {row.id for row in rows}
    for run in runs:
        run.stored = sum(1 for id_ in run.ids if id_ in stored_ids)
    spool_left = len(list(spool_dir.iterdir())) if spool_dir.exists() else 0
    if not spool_left:
        shutil.rmtree(spool_dir, ignore_errors=True)
    return DemoResult(
        database_url=database_url,
        redis_url=redis_url,
        calls_per_mode=calls,
        runs=runs,
        agents=_summaries(rows),
        redaction=_check_redaction(rows, workload),
        seconds=time.perf_counter() - began,
        migrated=migrated,
        total_rows=store.count(),
        spool_left=spool_left,
    )


def _drain_queue(config: agentlog.Config) -> None:
    """Write what the async run enqueued, with an rq worker in this process."""
    build_worker(config, simple=True).work(burst=True, logging_level="WARNING")


def format_seconds(seconds: float) -> str:
    """A short human duration: ``18 µs``, ``2.41 ms``, ``1.2 s``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.1f} s"


def _mask(secret: str) -> str:
    return f"{secret[:12]}…{secret[-4:]}"


def overhead_stats(run: ModeRun) -> dict[str, float]:
    values = run.overheads
    return {
        "median": percentile(values, 0.50),
        "p99": percentile(values, 0.99),
        "mean": sum(values) / len(values) if values else 0.0,
        "max": max(values, default=0.0),
    }


def describe_database(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return f"{url} ({Path(parsed.database or '').resolve()})"
    return safe_url(url)


def render_intro(console: Console, database_url: str, redis_url: str | None, calls: int) -> None:
    agents = ", ".join(f"{p.name} ({p.model})" for p in PROFILES)
    console.print(
        f"[bold]agentlog demo[/]: {calls} simulated agent calls in sync mode, then {calls} in "
        f"async mode, latencies ~1/{LATENCY_SCALE} of real"
    )
    console.print(f"  agents    {agents}")
    console.print(f"  database  {describe_database(database_url)}")
    queue = (
        f"{safe_url(redis_url)} (rq; drained by a worker in this process)"
        if redis_url
        else "none: async mode writes from an in-process background thread"
    )
    console.print(f"  queue     {queue}")
    console.print()


def render(console: Console, result: DemoResult) -> None:
    sync, async_ = result.runs
    stats = {run.mode: overhead_stats(run) for run in result.runs}
    console.print("[bold]Logging overhead per call, on the caller's thread[/]")
    console.print(
        "[dim]time around each `with agentlog.track(...)` block minus the simulated call inside[/]"
    )
    table = Table()
    table.add_column("")
    table.add_column("sync", justify="right")
    table.add_column("async", justify="right")
    for name in ("median", "p99", "mean", "max"):
        table.add_row(
            name,
            format_seconds(stats["sync"][name]),
            f"[bold green]{format_seconds(stats['async'][name])}[/]",
        )
    table.add_row(
        "rows stored",
        f"{sync.stored}/{len(sync.ids)}",
        f"{async_.stored}/{len(async_.ids)}",
    )
    console.print(table)
    if stats["async"]["median"] > 0:
        ratio = stats["sync"]["median"] / stats["async"]["median"]
        console.print(
            f"async costs the caller [bold]{ratio:.0f}x[/] less than sync at the median; "
            f"flush() then waited {format_seconds(async_.flush_seconds)} for the last batch."
        )
    console.print()

    rows = sum(a.calls for a in result.agents)
    console.print(f"[bold]Read back from the database ({rows} rows of this run)[/]")
    summary = Table()
    for name, justify in (
        ("agent", "left"),
        ("model", "left"),
        ("calls", "right"),
        ("errors", "right"),
        ("p50", "right"),
        ("p95", "right"),
        ("tokens", "right"),
        ("cost", "right"),
    ):
        summary.add_column(name, justify=justify)  # type: ignore[arg-type]
    for agent in result.agents:
        summary.add_row(
            agent.agent,
            agent.model,
            str(agent.calls),
            f"{agent.errors} ({agent.error_rate:.1%})",
            f"{agent.p50_ms:.1f} ms",
            f"{agent.p95_ms:.1f} ms",
            f"{agent.tokens:,}",
            f"${agent.cost:.4f}",
        )
    calls = sum(a.calls for a in result.agents)
    errors = sum(a.errors for a in result.agents)
    summary.add_section()
    summary.add_row(
        "[bold]all[/]",
        "",
        str(calls),
        f"{errors} ({errors / calls if calls else 0:.1%})",
        "",
        "",
        f"{sum(a.tokens for a in result.agents):,}",
        f"${sum((a.cost for a in result.agents), Decimal(0)):.4f}",
    )
    console.print(summary)
    console.print(
        "errors are the simulated rate limits, context-length errors and timeouts; "
        "latency is the tracked duration."
    )
    console.print()

    check = result.redaction
    console.print("[bold]Redaction[/]")
    console.print(
        f"  planted   {_mask(check.secret)} as parameters.api_key in "
        f"{check.planted_in_parameters} calls and inside the prompt of "
        f"{check.planted_in_prompts} calls"
    )
    if check.ok:
        console.print(
            f"  found     [bold green]in 0 of {check.rows_searched} stored rows[/] "
            "(searched every column)"
        )
    else:
        console.print(
            f"  found     [bold red]in {check.rows_with_secret} of {check.rows_searched} "
            "stored rows: NOT redacted[/]"
        )
    if check.stored_parameter is not None:
        console.print(f"  stored    parameters.api_key = {check.stored_parameter!r}")
    if check.stored_prompt is not None:
        console.print(f"  stored    prompt = {check.stored_prompt!r}")
    console.print()

    if result.spool_left:
        console.print(
            f"[bold red]{result.spool_left} spool files were left: some rows could not be "
            "written[/]"
        )
    if result.migrated:
        console.print("The database schema was created/upgraded for the demo (agentlog migrate).")
    console.print(
        f"[bold]{'done' if result.ok else 'FAILED'}[/] in {result.seconds:.1f} s; "
        f"{result.total_rows} rows in the table now."
    )
    parsed = make_url(result.database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        console.print(
            f'Look at them: sqlite3 {parsed.database} "select agent, model, status, '
            "total_tokens, total_cost from agentlog_executions order by started_at desc "
            'limit 5"'
        )


def to_json(result: DemoResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "database_url": safe_url(result.database_url),
        "redis_url": safe_url(result.redis_url) if result.redis_url else None,
        "calls_per_mode": result.calls_per_mode,
        "seconds": round(result.seconds, 3),
        "overhead_us": {
            run.mode: {k: round(v * 1e6, 1) for k, v in overhead_stats(run).items()}
            for run in result.runs
        },
        "stored": {
            run.mode: {"tracked": len(run.ids), "stored": run.stored} for run in result.runs
        },
        "flush_seconds": {run.mode: round(run.flush_seconds, 4) for run in result.runs},
        "agents": [
            {
                "agent": a.agent,
                "model": a.model,
                "calls": a.calls,
                "errors": a.errors,
                "error_rate": round(a.error_rate, 4),
                "p50_ms": round(a.p50_ms, 2),
                "p95_ms": round(a.p95_ms, 2),
                "tokens": a.tokens,
                "cost_usd": str(a.cost),
            }
            for a in result.agents
        ],
        "redaction": {
            "ok": result.redaction.ok,
            "planted_in_parameters": result.redaction.planted_in_parameters,
            "planted_in_prompts": result.redaction.planted_in_prompts,
            "rows_searched": result.redaction.rows_searched,
            "rows_with_secret": result.redaction.rows_with_secret,
            "stored_parameter": result.redaction.stored_parameter,
            "stored_prompt": result.redaction.stored_prompt,
        },
        "total_rows": result.total_rows,
        "spool_files_left": result.spool_left,
    }
