"""Alerts: agentlog.monitor.check_backlog and `agentlog monitor`, against a real redis-server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agentlog.monitor import Alert, check_backlog
from agentlog.ops.worker import build_worker

from .conftest import config_for, drain_in_process, enqueue_batches, invoke, queue_for


def test_a_backed_up_queue_is_notified_once_then_once_more_when_it_clears(
    redis_url: str, postgres_url: str
) -> None:
    config = config_for(redis_url, postgres_url)
    alerts: list[Alert] = []
    enqueue_batches(config, [1, 1, 1])

    first = check_backlog(2, alerts.append, config=config)
    assert not first.healthy
    assert first.depth == 3
    assert {a.kind for a in alerts} == {"backlog", "no_worker"}
    backlog = next(a for a in alerts if a.kind == "backlog")
    assert str(backlog) == backlog.message
    assert "queue 'llm_logging' is backed up: 3 jobs waiting (threshold 2)" in backlog.message
    assert backlog.value == 3
    assert not backlog.resolved

    enqueue_batches(config, [1])
    second = check_backlog(2, alerts.append, config=config)
    assert set(second.problems) == {"backlog", "no_worker"}
    assert second.alerts == []  # still backed up: not notified again
    assert len(alerts) == 2

    drain_in_process(config)
    cleared = check_backlog(2, alerts.append, config=config)
    assert cleared.depth == 0
    (resolved,) = [a for a in cleared.alerts if a.kind == "backlog"]
    assert resolved.resolved
    assert "below its threshold again" in resolved.message
    assert check_backlog(2, alerts.append, config=config).alerts == []


def test_growing_failed_jobs_are_notified_at_each_growth(redis_url: str, postgres_url: str) -> None:
    config = config_for(redis_url, postgres_url)
    queue = queue_for(config)
    alerts: list[Alert] = []
    queue.enqueue("agentlog.jobs.log_executions", {"not": "a list"})
    drain_in_process(config)

    report = check_backlog(1000, alerts.append, config=config)
    (failed,) = [a for a in alerts if a.kind == "failed"]
    assert failed.value == 1
    assert "grew from 0 to 1" in failed.message
    assert "log_executions expects a list" in failed.message
    assert "failed" in report.problems
    check_backlog(1000, alerts.append, config=config)
    assert [a.kind for a in alerts].count("failed") == 1

    queue.enqueue("agentlog.jobs.log_executions", "still not a list")
    drain_in_process(config)
    check_backlog(1000, alerts.append, config=config)
    assert [a.message for a in alerts if a.kind == "failed"][-1].startswith(
        "agentlog: failed jobs on queue 'llm_logging' grew from 1 to 2"
    )


def test_a_failing_notifier_is_retried_on_the_next_check(redis_url: str, postgres_url: str) -> None:
    config = config_for(redis_url, postgres_url)
    enqueue_batches(config, [1, 1])
    sent: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise OSError("slack is down")

    with pytest.raises(OSError, match="slack is down"):
        check_backlog(1, broken, config=config)
    check_backlog(1, sent.append, config=config)
    assert "backlog" in {a.kind for a in sent}


def test_unreachable_redis_is_notified_once(dead_redis_url: str, sqlite_url: str) -> None:
    config = config_for(dead_redis_url, sqlite_url)
    alerts: list[Alert] = []
    report = check_backlog(10, alerts.append, config=config)
    assert report.problems == ["redis_unreachable"]
    (alert,) = alerts
    assert alert.kind == "redis_unreachable"
    assert "cannot reach Redis at" in alert.message
    check_backlog(10, alerts.append, config=config)
    assert len(alerts) == 1


def test_monitor_command_runs_its_exec_hook_once_for_a_backed_up_queue(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    config = config_for(redis_url, postgres_url)
    enqueue_batches(config, [1, 1, 1])
    log = tmp_path / "alerts.log"
    hook = f'printf "%s|%s\\n" "$AGENTLOG_ALERT_KIND" "$AGENTLOG_ALERT_VALUE" >> {log}'
    args = (
        "monitor",
        "--once",
        "--threshold",
        "2",
        "--exec",
        hook,
        "--redis-url",
        redis_url,
        "--database-url",
        postgres_url,
    )

    first = invoke(*args)
    assert first.exit_code == 1  # unhealthy: backed up, no worker
    assert "notified: agentlog: queue 'llm_logging' is backed up" in first.stdout
    second = invoke(*args)
    assert second.exit_code == 1
    assert "notified" not in second.stdout
    assert sorted(log.read_text().splitlines()) == ["backlog|3", "no_worker|0"]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def test_monitor_command_posts_to_a_webhook(
    redis_url: str, postgres_url: str, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    config = config_for(redis_url, postgres_url)
    enqueue_batches(config, [1, 1])
    args = (
        "monitor",
        "--once",
        "--threshold",
        "1",
        "--webhook",
        url,
        "--json",
        "--redis-url",
        redis_url,
        "--database-url",
        postgres_url,
    )
    result = invoke(*args)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["depth"] == 2
    assert set(report["problems"]) == {"backlog", "no_worker"}
    backlog = next(body for body in received if body["kind"] == "backlog")
    assert backlog["text"].startswith("agentlog: queue 'llm_logging' is backed up: 2 jobs")
    assert backlog["value"] == 2
    assert backlog["threshold"] == 1
    assert backlog["resolved"] is False
    invoke(*args)
    assert len(received) == 2  # backlog and no_worker, each once


def test_monitor_exits_0_when_a_worker_listens_and_1_when_none_does(
    redis_url: str, postgres_url: str
) -> None:
    config = config_for(redis_url, postgres_url)
    args = (
        "monitor",
        "--once",
        "--threshold",
        "5",
        "--redis-url",
        redis_url,
        "--database-url",
        postgres_url,
    )
    alone = invoke(*args)
    assert alone.exit_code == 1
    assert "no rq worker is listening on queue 'llm_logging'" in alone.stdout

    worker = build_worker(config)
    worker.register_birth()  # as a running `agentlog worker` does
    try:
        watched = invoke(*args)
        assert watched.exit_code == 0, watched.output
        assert "1 rq worker(s) listening on queue 'llm_logging' again" in watched.stdout
        assert "1 workers, 0 failed: ok" in watched.stdout
    finally:
        worker.register_death()
