"""The ``agentlog`` console script: run workers, look at the queue, fix what broke.

Every command takes ``--database-url``, ``--redis-url`` and ``--queue``
(defaults: ``AGENTLOG_DATABASE_URL``, ``AGENTLOG_REDIS_URL``,
``AGENTLOG_QUEUE``), prints rich tables for people and ``--json`` for
machines, and reports an unreachable server as one line, without a traceback.
Exit codes: 0 healthy, 1 unhealthy or failed, 2 bad usage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import agentlog
from agentlog.config import ENV_DATABASE_URL, ENV_QUEUE, ENV_REDIS_URL, ENV_SPOOL_DIR
from agentlog.ops import queue_health as qh
from agentlog.ops.context import Ops, OpsError, build_ops_config, safe_url
from agentlog.ops.database import migrate as migrate_schema
from agentlog.ops.doctor import DEFAULT_MAX_DEPTH, healthy, run_doctor
from agentlog.ops.status import collect_status
from agentlog.writer import describe

app = typer.Typer(
    name="agentlog",
    help="Log LLM agent executions into your SQL database: workers, queue health, maintenance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=ENV_DATABASE_URL,
        help="SQLAlchemy URL of the store (default sqlite:///agentlog.db).",
        show_default=False,
    ),
]
RedisUrl = Annotated[
    str | None,
    typer.Option("--redis-url", envvar=ENV_REDIS_URL, help="Redis URL of the rq queue."),
]
QueueName = Annotated[
    str | None,
    typer.Option("--queue", envvar=ENV_QUEUE, help="Queue name (default llm_logging)."),
]
SpoolDir = Annotated[
    Path | None,
    typer.Option("--spool-dir", envvar=ENV_SPOOL_DIR, help="Spool directory on this machine."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Limit = Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")]

STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "info": "dim"}


# Output that is not a terminal (logs, pipes, CI) gets room for the tables instead of 80 columns.
PIPE_WIDTH = 120


def _console(stderr: bool = False, soft_wrap: bool = False) -> Console:
    console = Console(highlight=False, stderr=stderr, soft_wrap=soft_wrap)
    if not console.is_terminal and console.width < PIPE_WIDTH:
        console = Console(highlight=False, stderr=stderr, soft_wrap=soft_wrap, width=PIPE_WIDTH)
    return console


def _fail(message: str) -> NoReturn:
    _console(stderr=True).print(f"[bold red]agentlog:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


def _usage(message: str) -> NoReturn:
    _console(stderr=True).print(message, soft_wrap=True)
    raise typer.Exit(2)


def _ops(
    database_url: str | None,
    redis_url: str | None,
    queue: str | None,
    spool_dir: Path | None = None,
) -> Ops:
    try:
        config = build_ops_config(
            database_url=database_url, redis_url=redis_url, queue=queue, spool_dir=spool_dir
        )
    except OpsError as exc:
        _fail(str(exc))
    return Ops(config)


@contextmanager
def _guard(ops: Ops) -> Iterator[None]:
    """Report Redis and database failures as one line and exit 1."""
    try:
        with ops.errors():
            yield
    except OpsError as exc:
        _fail(str(exc))


def _json_default(value: Any) -> Any:
    if isinstance(value, (Path, Decimal)):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _print_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, default=_json_default, option=orjson.OPT_INDENT_2).decode())


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _when(moment: datetime | None) -> str:
    return qh.format_age(qh.age_seconds(moment)) + " ago" if moment else "-"


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=40),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


# -- worker -----------------------------------------------------------------


@app.command()
def worker(
    queues: Annotated[
        list[str] | None,
        typer.Argument(help="More queues to work on, after the logging queue.", show_default=False),
    ] = None,
    burst: Annotated[bool, typer.Option("--burst", help="Stop when the queues are empty.")] = False,
    simple: Annotated[
        bool, typer.Option("--simple", help="SimpleWorker: run jobs in this process, no fork.")
    ] = False,
    with_scheduler: Annotated[
        bool,
        typer.Option("--with-scheduler", help="Also run rq's scheduler (retries with a wait)."),
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="Worker name.")] = None,
    max_jobs: Annotated[
        int | None, typer.Option("--max-jobs", min=1, help="Stop after this many jobs.")
    ] = None,
    logging_level: Annotated[str, typer.Option("--logging-level")] = "INFO",
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
) -> None:
    """Run an rq worker on the logging queue (JSON serializer); it writes the batches."""
    from agentlog.ops.worker import run_worker

    ops = _ops(database_url, redis_url, queue)
    with _guard(ops):
        ops.require_redis_url()
        run_worker(
            ops,
            queues or (),
            burst=burst,
            simple=simple,
            with_scheduler=with_scheduler,
            name=name,
            max_jobs=max_jobs,
            logging_level=logging_level.upper(),
        )


# -- status -----------------------------------------------------------------


@app.command()
def status(
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    spool_dir: SpoolDir = None,
    json_output: Json = False,
) -> None:
    """Queue depth, registries, workers, recent rows, schema version, spool, counters."""
    ops = _ops(database_url, redis_url, queue, spool_dir)
    report = collect_status(ops)
    if json_output:
        _print_json(report)
        raise typer.Exit(0 if report.reachable else 1)
    console = _console()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    if report.redis_url is None:
        grid.add_row("queue", "[dim]no Redis configured: async mode writes from a thread[/]")
    elif report.queue is None:
        grid.add_row("queue", f"[bold red]{escape(report.errors.get('redis', '?'))}[/]")
    else:
        q = report.queue
        grid.add_row("queue", f"'{q.queue}' on {report.redis_url}")
        oldest = f" (oldest waiting {qh.format_age(q.oldest_pending_age)})" if q.depth else ""
        grid.add_row("  pending", f"{_n(q.depth, 'job')}{oldest}")
        grid.add_row(
            "  registries",
            f"started {q.started} · scheduled {q.scheduled} · deferred {q.deferred} · "
            + (f"[bold red]failed {q.failed}[/]" if q.failed else "failed 0"),
        )
        if q.workers:
            workers = ", ".join(
                f"{w.name} ({w.state}, {w.hostname or '?'}:{w.pid or '?'})" for w in q.workers
            )
            grid.add_row("  workers", f"{len(q.workers)}: {escape(workers)}")
        else:
            grid.add_row("  workers", "[bold red]none listening on this queue[/]")
    grid.add_row("database", report.database_url)
    if report.database is None:
        grid.add_row("", f"[bold red]{escape(report.errors.get('database', '?'))}[/]")
    else:
        db = report.database
        if db.note:
            grid.add_row("  schema", f"[yellow]{escape(db.note)}[/]")
        else:
            mark = "[green]current[/]" if db.schema_current else "[bold red]behind: migrate[/]"
            grid.add_row("  schema", f"{db.revision or 'none'} (code: {db.head}) {mark}")
        if db.rows_last_hour is not None:
            grid.add_row(
                "  rows logged",
                f"last minute {db.rows_last_minute} · last hour {db.rows_last_hour}",
            )
    spool = report.spool
    spool_style = "bold red" if spool.records else "green"
    grid.add_row(
        "spool",
        f"[{spool_style}]{spool.records} records in {spool.files} files[/] "
        f"({_bytes(spool.bytes)}) under {escape(str(spool.directory))}",
    )
    counters = report.counters
    grid.add_row(
        "this process",
        " · ".join(f"{k} {counters[k]}" for k in ("fallbacks", "spooled", "dropped"))
        + " [dim](each app counts its own: agentlog.stats())[/]",
    )
    console.print(grid)
    raise typer.Exit(0 if report.reachable else 1)


# -- pending / failed / requeue ---------------------------------------------


@app.command()
def pending(
    limit: Limit = 20,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    json_output: Json = False,
) -> None:
    """The executions waiting in the queue (agent, model, age), as redacted when enqueued."""
    ops = _ops(database_url, redis_url, queue)
    with _guard(ops):
        ops.require_redis_url()
        depth = ops.queue.count
        rows = qh.pending_executions(ops.queue, limit)
    if json_output:
        _print_json({"queue": ops.config.queue_name, "jobs": depth, "executions": rows})
        return
    console = _console()
    if not rows:
        console.print(f"queue '{ops.config.queue_name}' is empty: nothing pending")
        return
    title = f"Pending on '{ops.config.queue_name}': {_n(depth, 'job')}"
    table = Table(title=title, title_justify="left")
    for column in ("job", "agent", "model", "status", "age", "enqueued"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.job_id,
            row.agent or "[dim](not an agentlog batch)[/]",
            row.model or "-",
            row.status or "-",
            qh.format_age(row.age),
            _when(row.enqueued_at),
        )
    console.print(table)
    if len(rows) == limit:
        console.print(f"[dim]first {limit} executions; --limit to see more[/]")


@app.command()
def failed(
    limit: Limit = 20,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    json_output: Json = False,
) -> None:
    """Dead jobs (rq's failed registry) with their error and attempts."""
    ops = _ops(database_url, redis_url, queue)
    with _guard(ops):
        ops.require_redis_url()
        total = ops.queue.failed_job_registry.get_job_count(cleanup=False)
        jobs = qh.failed_jobs(ops.queue, limit, ops.config)
    if json_output:
        _print_json({"queue": ops.config.queue_name, "failed": total, "jobs": jobs})
        return
    console = _console()
    if not jobs:
        console.print(f"no failed jobs on '{ops.config.queue_name}'")
        return
    console.print(f"[bold]Failed on '{ops.config.queue_name}': {_n(total, 'job')}[/]")
    for job in jobs:
        carried = "" if job.executions is None else f" · {_n(job.executions, 'execution')}"
        console.print(
            f"[bold]{job.job_id}[/]  failed {_when(job.failed_at)}{carried} · "
            f"{_n(job.attempts, 'attempt')}",
            soft_wrap=True,
        )
        console.print(f"  [red]{escape(job.error)}[/]", soft_wrap=True)
    if total > len(jobs):
        console.print(f"[dim]the latest {len(jobs)}; --limit to see more[/]")
    console.print(
        "[dim]fix the cause, then: agentlog requeue --all (or agentlog requeue JOB_ID ...)[/]"
    )


@app.command()
def requeue(
    job_ids: Annotated[
        list[str] | None, typer.Argument(help="Failed job ids to requeue.", show_default=False)
    ] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="Requeue every failed job.")] = False,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    json_output: Json = False,
) -> None:
    """Put failed jobs back on the queue (--all, or the given JOB_IDs)."""
    if all_jobs == bool(job_ids):
        _usage("agentlog requeue: give --all or job ids (not both)")
    ops = _ops(database_url, redis_url, queue)
    with _guard(ops):
        ops.require_redis_url()
        report = qh.requeue(ops.queue, None if all_jobs else job_ids)
    if json_output:
        _print_json(report)
    else:
        console = _console()
        console.print(f"requeued {_n(len(report.requeued), 'job')} onto '{ops.config.queue_name}'")
        for job_id in report.missing:
            console.print(f"[bold red]not in the failed registry:[/] {escape(job_id)}")
    raise typer.Exit(1 if report.missing else 0)


# -- replay -----------------------------------------------------------------


@app.command()
def replay(
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    spool_dir: SpoolDir = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 500,
    json_output: Json = False,
) -> None:
    """Insert the spooled executions on this machine into the database, then delete the files."""
    ops = _ops(database_url, redis_url, queue, spool_dir)
    spool = ops.spool
    total = spool.count()
    console = _console(stderr=json_output)
    with _guard(ops):
        store = ops.store
        with store.engine.connect():
            pass  # reachable before anything is claimed
        with _progress(console) as progress:
            task = progress.add_task("replaying", total=total or None)
            report = spool.replay(
                store.insert_many,
                batch_size=batch_size,
                progress=lambda n: progress.advance(task, n),
            )
    ok = not report.failed and not report.corrupt
    if json_output:
        _print_json({"directory": spool.directory, "ok": ok, **dataclasses.asdict(report)})
        raise typer.Exit(0 if ok else 1)
    if not report.files:
        console.print(f"spool {escape(str(spool.directory))} is empty: nothing to replay")
    else:
        console.print(
            f"replayed {_n(report.records, 'record')} from {_n(report.files, 'file')}: "
            f"{report.inserted} new rows ({report.records - report.inserted} were stored already)"
        )
    for where in report.corrupt:
        console.print(f"[bold red]corrupt line skipped:[/] {escape(where)}")
    for failure in report.failed:
        console.print(f"[bold red]stopped, file kept for the next replay:[/] {escape(failure)}")
    raise typer.Exit(0 if ok else 1)


# -- doctor / migrate ---------------------------------------------------------


@app.command()
def doctor(
    max_depth: Annotated[
        int, typer.Option("--max-depth", min=0, help="Queue depth above which to fail.")
    ] = DEFAULT_MAX_DEPTH,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    spool_dir: SpoolDir = None,
    json_output: Json = False,
) -> None:
    """Run the troubleshooting checklist: each check passes or fails with the fix to try."""
    ops = _ops(database_url, redis_url, queue, spool_dir)
    with _guard(ops):
        checks = run_doctor(ops, max_depth=max_depth)
    ok = healthy(checks)
    if json_output:
        _print_json({"healthy": ok, "checks": checks})
        raise typer.Exit(0 if ok else 1)
    console = _console()
    table = Table(show_header=True, box=None, padding=(0, 1))
    table.add_column("")
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("result", overflow="fold")
    for check in checks:
        style = STATUS_STYLE[check.status]
        detail = escape(check.detail)
        if check.fix and check.status in ("fail", "warn"):
            detail += f"\n[cyan]→ {escape(check.fix)}[/]"
        table.add_row(f"[{style}]{check.status.upper()}[/]", check.name, detail)
    console.print(table)
    failures = [c.name for c in checks if c.status == "fail"]
    if failures:
        console.print(f"[bold red]unhealthy:[/] {', '.join(failures)}")
    else:
        console.print("[green]healthy[/]")
    raise typer.Exit(0 if ok else 1)


@app.command()
def migrate(
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    json_output: Json = False,
) -> None:
    """Create or upgrade the agentlog_executions table (Alembic, own version table)."""
    ops = _ops(database_url, redis_url, queue)
    with _guard(ops):
        before, after = migrate_schema(ops.store)
    url = safe_url(ops.config.database_url)
    if json_output:
        _print_json({"database_url": url, "before": before, "revision": after})
    elif before == after:
        _console().print(f"{url}: already at revision {after} (head)")
    else:
        _console().print(f"{url}: upgraded from {before or 'nothing'} to revision {after} (head)")


# -- purge --------------------------------------------------------------------


@app.command()
def purge(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age such as 30d, 12h, 2w (by started_at).")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count.")] = False,
    keep_errors: Annotated[
        bool, typer.Option("--keep-errors", help="Keep executions that ended in error or timeout.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows per delete transaction.")
    ] = 1000,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    json_output: Json = False,
) -> None:
    """Delete executions older than an age, in small batches (safe while workers insert)."""
    from agentlog.ops.purge import parse_age
    from agentlog.ops.purge import purge as purge_rows

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        _usage(f"agentlog purge: --older-than {escape(str(exc))}")
    ops = _ops(database_url, redis_url, queue)
    console = _console(stderr=json_output)
    with _guard(ops):
        store = ops.require_schema()
        with _progress(console) as progress:
            task = progress.add_task("counting", total=None)

            def on_count(matched: int) -> None:
                if dry_run:
                    progress.update(task, visible=False)
                else:
                    progress.update(task, description="deleting", total=matched)

            report = purge_rows(
                store,
                age,
                dry_run=dry_run,
                keep_errors=keep_errors,
                batch_size=batch_size,
                on_count=on_count,
                progress=lambda n: progress.advance(task, n),
            )
    if json_output:
        _print_json(report)
        return
    what = "executions" + (" (errors and timeouts kept)" if keep_errors else "")
    cutoff = report.cutoff.strftime("%Y-%m-%d %H:%M:%S UTC")
    if dry_run:
        console.print(f"dry run: would delete {report.matched} {what} started before {cutoff}")
    else:
        console.print(f"deleted {report.deleted} {what} started before {cutoff}")


# -- monitor ------------------------------------------------------------------


@app.command()
def monitor(
    threshold: Annotated[
        int, typer.Option("--threshold", min=0, help="Alert above this many waiting jobs.")
    ] = 1000,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between checks.")
    ] = 60.0,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST alerts as JSON ({'text': ...}) here.")
    ] = None,
    exec_command: Annotated[
        str | None,
        typer.Option("--exec", help="Run this shell command per alert (AGENTLOG_ALERT_* env)."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Check once; exit 1 if unhealthy.")] = False,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    json_output: Json = False,
) -> None:
    """Alert when the queue backs up, failed jobs grow, no worker is alive or Redis is down."""
    from agentlog.ops import monitor as mon

    if webhook and exec_command:
        _usage("agentlog monitor: give --webhook or --exec, not both")
    ops = _ops(database_url, redis_url, queue)
    try:
        ops.require_redis_url()
    except OpsError as exc:
        _fail(str(exc))
    console = _console()
    errors = _console(stderr=True)
    notify: mon.Notify
    if webhook:
        notify = mon.webhook_notifier(webhook)
    elif exec_command:
        notify = mon.exec_notifier(exec_command)
    else:
        notify = mon.print_notifier

    def on_report(report: mon.BacklogReport) -> None:
        if json_output:
            typer.echo(orjson.dumps(report, default=_json_default).decode())
            return
        if webhook or exec_command:
            for alert in report.alerts:
                console.print(f"notified: {escape(alert.message)}")
        if report.error:
            return
        state = ", ".join(report.problems) if report.problems else "ok"
        console.print(
            f"[dim]{datetime.now():%H:%M:%S}[/] '{report.queue}': {report.depth} waiting, "
            f"{report.workers} workers, {report.failed} failed: {state}"
        )

    def on_error(exc: BaseException) -> None:
        errors.print(f"[bold red]agentlog monitor:[/] {escape(describe(exc))}")

    try:
        report = mon.run_monitor(
            ops.config,
            threshold,
            notify,
            interval=interval,
            once=once,
            on_report=on_report,
            on_error=on_error,
        )
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    raise typer.Exit(0 if report.healthy else 1)


# -- demo ---------------------------------------------------------------------


@app.command()
def demo(
    calls: Annotated[int, typer.Option("--calls", min=10, help="Simulated calls per mode.")] = 250,
    database_url: DatabaseUrl = None,
    redis_url: RedisUrl = None,
    queue: QueueName = None,
    json_output: Json = False,
) -> None:
    """Simulated agents logged in sync and async mode: overhead, summary, redaction."""
    from agentlog.ops import demo as demo_module

    ops = _ops(database_url, redis_url, queue)
    config = ops.config
    console = _console(stderr=json_output, soft_wrap=True)
    if not json_output:
        demo_module.render_intro(console, config.database_url, config.redis_url, calls)
    with _guard(ops):
        if config.redis_url:
            ops.redis  # noqa: B018 - fail now, with one line, if Redis is unreachable
        result = demo_module.run_demo(
            config.database_url,
            config.redis_url,
            queue,
            calls=calls,
            console=console,
        )
    if json_output:
        _print_json(demo_module.to_json(result))
    else:
        console.print()
        demo_module.render(console, result)
    raise typer.Exit(0 if result.ok else 1)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentlog {agentlog.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """agentlog: log every LLM agent execution into your own SQL database."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
