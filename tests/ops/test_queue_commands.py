"""status, pending, failed, requeue, doctor, worker: on a real redis-server and PostgreSQL."""

from __future__ import annotations

import json

import sqlalchemy as sa

from agentlog.config import Retry
from agentlog.migrations import head_revision
from agentlog.store import get_store

from .conftest import config_for, drain_in_process, enqueue_batches, invoke, queue_for, run_agentlog


def test_status_shows_the_depth_and_doctor_names_the_missing_worker(
    redis_url: str, postgres_url: str
) -> None:
    config = config_for(redis_url, postgres_url)
    enqueue_batches(config, [3, 2])
    urls = ("--redis-url", redis_url, "--database-url", postgres_url)

    result = invoke("status", "--json", *urls)
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["queue"]["depth"] == 2
    assert status["queue"]["workers"] == []
    assert status["queue"]["oldest_pending_age"] >= 0
    assert status["queue"]["failed"] == 0
    assert status["database"]["revision"] == head_revision()
    assert status["spool"]["records"] == 0

    human = invoke("status", *urls)
    assert human.exit_code == 0
    assert "2 jobs" in human.stdout
    assert "none listening on this queue" in human.stdout

    doctor = invoke("doctor", *urls)
    assert doctor.exit_code == 1
    assert "no rq worker is listening on queue 'llm_logging'" in doctor.stdout
    assert "start one: agentlog worker" in doctor.stdout
    assert "unhealthy: worker alive" in doctor.stdout

    checks = {c["name"]: c for c in json.loads(invoke("doctor", "--json", *urls).stdout)["checks"]}
    assert checks["worker alive"]["status"] == "fail"
    assert checks["Redis reachable"]["status"] in ("pass", "warn")
    assert checks["queue depth"]["status"] == "pass"
    assert checks["schema current"]["status"] == "pass"
    assert checks["spool empty"]["status"] == "pass"
    failing = invoke("doctor", "--json", "--max-depth", "1", *urls)
    depth = {c["name"]: c for c in json.loads(failing.stdout)["checks"]}["queue depth"]
    assert depth["status"] == "fail"
    assert "2 jobs waiting" in depth["detail"]


def test_pending_lists_the_waiting_executions(redis_url: str, postgres_url: str) -> None:
    config = config_for(redis_url, postgres_url)
    enqueue_batches(config, [2], agent="router", model="gpt-4o-mini")
    enqueue_batches(config, [1], agent="summarizer", model="claude-sonnet-4-5")
    urls = ("--redis-url", redis_url, "--database-url", postgres_url)

    result = invoke("pending", "--json", *urls)
    assert result.exit_code == 0, result.output
    pending = json.loads(result.stdout)
    assert pending["jobs"] == 2
    assert [(e["agent"], e["model"]) for e in pending["executions"]] == [
        ("router", "gpt-4o-mini"),
        ("router", "gpt-4o-mini"),
        ("summarizer", "claude-sonnet-4-5"),
    ]
    assert all(e["age"] >= 0 for e in pending["executions"])
    assert (
        len(json.loads(invoke("pending", "--json", "--limit", "1", *urls).stdout)["executions"])
        == 1
    )
    human = invoke("pending", *urls)
    assert "summarizer" in human.stdout
    assert "claude-sonnet-4-5" in human.stdout


def test_a_job_that_raises_shows_in_failed_and_requeue_brings_it_back(
    redis_url: str, postgres_url: str
) -> None:
    config = config_for(redis_url, postgres_url)
    queue = queue_for(config)
    job = queue.enqueue("agentlog.jobs.log_executions", {"not": "a list"})
    drain_in_process(config)
    urls = ("--redis-url", redis_url, "--database-url", postgres_url)

    result = invoke("failed", "--json", *urls)
    assert result.exit_code == 0, result.output
    failed = json.loads(result.stdout)
    assert failed["failed"] == 1
    (entry,) = failed["jobs"]
    assert entry["job_id"] == job.id
    assert entry["error"] == "TypeError: log_executions expects a list of executions, got dict"
    assert entry["attempts"] == 1
    assert "Traceback" in entry["traceback"]
    human = invoke("failed", *urls)
    assert "log_executions expects a list of executions" in human.stdout

    assert invoke("requeue", *urls).exit_code == 2  # neither --all nor ids
    missing = invoke("requeue", "no-such-job", *urls)
    assert missing.exit_code == 1
    assert "not in the failed registry: no-such-job" in missing.stdout

    requeued = invoke("requeue", job.id, *urls)
    assert requeued.exit_code == 0, requeued.output
    assert "requeued 1 job onto 'llm_logging'" in requeued.stdout
    assert queue.get_job_ids() == [job.id]
    assert queue.failed_job_registry.get_job_count(cleanup=False) == 0

    drain_in_process(config)  # fails again: counted as a second attempt
    again = json.loads(invoke("failed", "--json", *urls).stdout)["jobs"][0]
    assert again["attempts"] == 2
    assert invoke("requeue", "--all", "--json", *urls).exit_code == 0
    assert queue.count == 1


def test_missing_schema_then_migrate_requeue_and_a_burst_worker_store_every_row(
    redis_url: str, empty_postgres_url: str
) -> None:
    config = config_for(redis_url, empty_postgres_url, retry=Retry(attempts=2, wait=0))
    wires = enqueue_batches(config, [3, 2])
    urls = ("--redis-url", redis_url, "--database-url", empty_postgres_url)

    refused = invoke("worker", "--burst", *urls)
    assert refused.exit_code == 1
    assert isinstance(refused.exception, SystemExit)  # a message, not a traceback
    assert "agentlog_executions does not exist" in refused.stderr
    assert "agentlog migrate" in refused.stderr

    drain_in_process(config)  # every job fails: no table
    failed = json.loads(invoke("failed", "--json", *urls).stdout)
    assert failed["failed"] == 2
    for entry in failed["jobs"]:
        assert "agentlog_executions does not exist" in entry["error"]
        assert entry["attempts"] == 2  # the first run and its one retry
        assert entry["executions"] in (2, 3)

    migrated = invoke("migrate", *urls)
    assert migrated.exit_code == 0, migrated.output
    assert f"upgraded from nothing to revision {head_revision()}" in migrated.stdout
    assert "already at revision" in invoke("migrate", *urls).stdout
    assert invoke("requeue", "--all", *urls).exit_code == 0

    worker = run_agentlog("worker", "--burst", *urls)
    assert worker.returncode == 0, worker.stderr
    engine = get_store(empty_postgres_url).engine
    with engine.connect() as connection:
        stored = {
            str(i)
            for i in connection.execute(sa.text("select id from agentlog_executions")).scalars()
        }
    assert stored == {w["id"] for w in wires}

    status = json.loads(invoke("status", "--json", *urls).stdout)
    assert status["queue"]["depth"] == 0
    assert status["queue"]["failed"] == 0
    assert status["database"]["rows_last_minute"] == 5
    assert status["database"]["rows_last_hour"] == 5


def test_unreachable_redis_is_one_line_and_exit_1(dead_redis_url: str, sqlite_url: str) -> None:
    urls = ("--redis-url", dead_redis_url, "--database-url", sqlite_url)
    for command in ("pending", "failed", "requeue --all", "worker --burst", "monitor --once"):
        result = invoke(*command.split(), *urls)
        assert result.exit_code == 1, (command, result.output)
        assert isinstance(result.exception, SystemExit), command
        assert "cannot reach Redis at" in result.output, command
    for command in ("status", "doctor"):  # these still report what they can reach
        result = invoke(command, *urls)
        assert result.exit_code == 1, (command, result.output)
        assert "cannot reach Redis at" in result.stdout, command
        assert "spool" in result.stdout, command
    process = run_agentlog("pending", *urls)  # the real console script, as an operator runs it
    assert process.returncode == 1
    assert process.stdout == ""
    (line,) = process.stderr.strip().splitlines()
    assert line.startswith("agentlog: cannot reach Redis at redis://127.0.0.1:")
    assert "Connection refused" in line


def test_commands_that_need_redis_say_so_when_none_is_configured(sqlite_url: str) -> None:
    result = invoke("pending", "--database-url", sqlite_url)
    assert result.exit_code == 1
    assert "no Redis configured" in result.stderr
