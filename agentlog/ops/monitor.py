"""Alerts: a backed-up queue, growing failed jobs, no worker, Redis unreachable.

``check_backlog`` looks once and calls ``notify`` for what changed since the
last look. The state ("already notified") lives in Redis, in one small hash
per queue, so that several monitors, cron runs or app processes checking the
same queue notify once between them, not once each. Only "Redis unreachable"
cannot be kept there; that one is remembered per process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from agentlog.config import Config, get_config
from agentlog.ops.context import safe_url
from agentlog.ops.queue_health import failed_jobs, live_workers, oldest_pending_age
from agentlog.transport import connect_redis, make_queue
from agentlog.writer import describe

logger = logging.getLogger("agentlog")

STATE_KEY = "agentlog:monitor:{queue}"
# Forget the state of a queue nobody has checked for a week.
STATE_TTL = 7 * 24 * 3600
WEBHOOK_TIMEOUT = 10.0
EXEC_TIMEOUT = 30.0

BACKLOG = "backlog"
NO_WORKER = "no_worker"
FAILED = "failed"
REDIS_UNREACHABLE = "redis_unreachable"

# Sets the field to ARGV[2] and returns what it was (0 when unset), atomically.
_SWAP = "local old = redis.call('HGET', KEYS[1], ARGV[1]) redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return tonumber(old or '0')"  # noqa: E501


@dataclass(frozen=True)
class Alert:
    """One notification. ``str(alert)`` is its message; ``resolved`` when a condition cleared."""

    kind: str
    message: str
    queue: str
    value: int | None = None
    threshold: int | None = None
    resolved: bool = False

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Notify = Callable[[Alert], object]


@dataclass
class BacklogReport:
    """What one check saw, and the alerts it sent."""

    queue: str
    threshold: int
    depth: int | None = None
    oldest_pending_age: float | None = None
    failed: int | None = None
    workers: int | None = None
    problems: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems


_unreachable_lock = threading.Lock()
_unreachable: set[tuple[str, str]] = set()


def _send(notify: Notify, alert: Alert, report: BacklogReport) -> None:
    notify(alert)
    report.alerts.append(alert)


def _set_condition(
    connection: redis.Redis,
    key: str,
    kind: str,
    active: bool,
    notify: Notify,
    report: BacklogReport,
    raised: Alert,
    cleared: Alert,
) -> None:
    """Notify when ``kind`` turns on or off; nothing while it stays as it was."""
    if active:
        report.problems.append(kind)
        if connection.hsetnx(key, kind, "1"):
            try:
                _send(notify, raised, report)
            except BaseException:
                connection.hdel(key, kind)  # not notified: try again next time
                raise
    elif connection.hdel(key, kind):
        try:
            _send(notify, cleared, report)
        except BaseException:
            connection.hset(key, kind, "1")
            raise


def check_backlog(
    threshold: int,
    notify: Notify,
    *,
    config: Config | None = None,
    connection: redis.Redis | None = None,
) -> BacklogReport:
    """Look at the logging queue once; call ``notify(alert)`` for each change.

    Alerts when more than ``threshold`` jobs wait, when no rq worker listens
    on the queue, when the failed registry grows, and when Redis cannot be
    reached; and once more (``alert.resolved``) when a condition clears. A
    condition that holds is notified once, not on every check. When ``notify``
    raises, the exception propagates and the same alert is tried again on the
    next check. ``config`` defaults to the process's (``agentlog.configure``),
    which must have a ``redis_url``.
    """
    config = config or get_config()
    if config.redis_url is None:
        raise ValueError("agentlog.monitor.check_backlog needs a config with a redis_url")
    report = BacklogReport(queue=config.queue_name, threshold=threshold)
    if connection is not None:
        _check(config, connection, notify, report)
        return report
    connection = connect_redis(config)
    try:
        _check(config, connection, notify, report)
    finally:
        connection.close()
    return report


def _check(config: Config, connection: redis.Redis, notify: Notify, report: BacklogReport) -> None:
    assert config.redis_url is not None
    url = safe_url(config.redis_url)
    name = config.queue_name
    marker = (config.redis_url, name)
    try:
        queue = make_queue(config, connection)
        report.depth = depth = queue.count
        report.oldest_pending_age = oldest = oldest_pending_age(queue)
        report.failed = failed = queue.failed_job_registry.get_job_count(cleanup=False)
        report.workers = workers = len(live_workers(queue))
    except redis.RedisError as exc:
        report.error = f"cannot reach Redis at {url} ({describe(exc)})"
        report.problems.append(REDIS_UNREACHABLE)
        with _unreachable_lock:
            first = marker not in _unreachable
            _unreachable.add(marker)
        if first:
            try:
                _send(notify, Alert(REDIS_UNREACHABLE, f"agentlog: {report.error}", name), report)
            except BaseException:
                with _unreachable_lock:
                    _unreachable.discard(marker)
                raise
        return
    with _unreachable_lock:
        was_unreachable = marker in _unreachable
        _unreachable.discard(marker)
    if was_unreachable:
        alert = Alert(
            REDIS_UNREACHABLE, f"agentlog: Redis at {url} is reachable again", name, resolved=True
        )
        _send(notify, alert, report)
    key = STATE_KEY.format(queue=name)
    waited = f", the oldest for {oldest:.0f}s" if oldest is not None else ""
    _set_condition(
        connection,
        key,
        BACKLOG,
        depth > report.threshold,
        notify,
        report,
        Alert(
            BACKLOG,
            f"agentlog: queue '{name}' is backed up: {depth} jobs waiting "
            f"(threshold {report.threshold}){waited}",
            name,
            depth,
            report.threshold,
        ),
        Alert(
            BACKLOG,
            f"agentlog: queue '{name}' is below its threshold again: {depth} jobs "
            f"waiting (threshold {report.threshold})",
            name,
            depth,
            report.threshold,
            resolved=True,
        ),
    )
    _set_condition(
        connection,
        key,
        NO_WORKER,
        workers == 0,
        notify,
        report,
        Alert(
            NO_WORKER,
            f"agentlog: no rq worker is listening on queue '{name}' ({depth} jobs "
            "waiting): start `agentlog worker`",
            name,
            workers,
        ),
        Alert(
            NO_WORKER,
            f"agentlog: {workers} rq worker(s) listening on queue '{name}' again",
            name,
            workers,
            resolved=True,
        ),
    )
    if failed:
        report.problems.append(FAILED)
    previous = int(connection.eval(_SWAP, 1, key, FAILED, str(failed)))
    if failed > previous:
        latest = failed_jobs(queue, 1, config)
        why = f"; latest: {latest[0].error}" if latest else ""
        alert = Alert(
            FAILED,
            f"agentlog: failed jobs on queue '{name}' grew from {previous} to {failed}{why}",
            name,
            failed,
        )
        try:
            _send(notify, alert, report)
        except BaseException:
            connection.hset(key, FAILED, str(previous))
            raise
    connection.expire(key, STATE_TTL)


def print_notifier(alert: Alert) -> None:
    print(alert.message, flush=True)


def webhook_notifier(url: str, timeout: float = WEBHOOK_TIMEOUT) -> Notify:
    """POSTs ``{"text": message, "kind": ..., ...}`` as JSON (Slack webhooks read "text")."""

    def notify(alert: Alert) -> None:
        body = json.dumps({"text": alert.message, **alert.to_dict()}).encode()
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()

    return notify


def exec_notifier(command: str, timeout: float = EXEC_TIMEOUT) -> Notify:
    """Runs ``command`` through the shell with the alert in the environment and as JSON on stdin.

    Variables: ``AGENTLOG_ALERT_KIND``, ``AGENTLOG_ALERT_MESSAGE``, ``AGENTLOG_ALERT_QUEUE``,
    ``AGENTLOG_ALERT_VALUE``, ``AGENTLOG_ALERT_RESOLVED`` ("1" or "0"). The message is
    never pasted into the command line, so it cannot inject shell syntax.
    """

    def notify(alert: Alert) -> None:
        env = {
            **os.environ,
            "AGENTLOG_ALERT_KIND": alert.kind,
            "AGENTLOG_ALERT_MESSAGE": alert.message,
            "AGENTLOG_ALERT_QUEUE": alert.queue,
            "AGENTLOG_ALERT_VALUE": "" if alert.value is None else str(alert.value),
            "AGENTLOG_ALERT_RESOLVED": "1" if alert.resolved else "0",
        }
        subprocess.run(
            command,
            shell=True,  # the operator's own command; the alert goes in env and stdin
            env=env,
            input=json.dumps(alert.to_dict()).encode(),
            timeout=timeout,
            check=True,
        )

    return notify


def run_monitor(
    config: Config,
    threshold: int,
    notify: Notify,
    *,
    interval: float,
    once: bool,
    on_report: Callable[[BacklogReport], None],
    on_error: Callable[[BaseException], None],
) -> BacklogReport:
    """Check every ``interval`` seconds (or once); returns the last report."""
    connection = connect_redis(config)
    try:
        while True:
            try:
                report = check_backlog(threshold, notify, config=config, connection=connection)
            except Exception as exc:  # e.g. a notifier that failed: retried on the next check
                on_error(exc)
                report = BacklogReport(config.queue_name, threshold, error=describe(exc))
                report.problems.append("check_failed")
            on_report(report)
            if once:
                return report
            time.sleep(interval)
    finally:
        connection.close()
