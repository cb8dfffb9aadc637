"""`agentlog demo` from a fresh directory: the README's first command."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import redis
import sqlalchemy as sa

from .conftest import run_agentlog


def test_demo_runs_in_a_fresh_directory_and_shows_the_secret_redacted(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_agentlog("demo", cwd=tmp_path, timeout=90)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 60
    out = result.stdout

    # both modes ran, every call stored
    assert "Logging overhead per call, on the caller's thread" in out
    assert re.search(r"rows stored\s*│\s*250/250\s*│\s*250/250", out), out
    medians = re.search(r"median\s*│\s*([\d.]+ [µm]?s)\s*│\s*([\d.]+ [µm]?s)", out)
    assert medians, out
    # the summary read back from the database, per agent
    for agent, model in (
        ("support-bot", "gpt-4o"),
        ("summarizer", "claude-sonnet-4-5"),
        ("router", "gpt-4o-mini"),
        ("code-reviewer", "claude-3-5-haiku-latest"),
    ):
        assert re.search(rf"{agent}\s*│\s*{model}\s*│", out), agent
    assert "Read back from the database (500 rows of this run)" in out
    # the planted key was redacted
    planted = re.search(r"planted\s+(sk-proj-\w{4})…", out)
    assert planted, out
    assert "in 0 of 500 stored rows" in out
    assert "parameters.api_key = '[REDACTED]'" in out
    assert 'OpenAI(api_key="[REDACTED]")' in out
    assert "Traceback" not in result.stderr

    # the embedded default: a SQLite file in the working directory, no Redis
    database = tmp_path / "agentlog.db"
    assert database.exists()
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("select agent, status, total_cost, parameters, prompt from agentlog_executions")
        ).all()
    engine.dispose()
    assert len(rows) == 500
    assert {r.status for r in rows} >= {"success", "error", "timeout"}
    assert all(r.total_cost is not None for r in rows if r.status == "success")
    stored = json.dumps([[str(v) for v in r] for r in rows])
    assert planted.group(1) not in stored
    assert "sk-proj-" not in stored


def test_demo_on_redis_and_postgresql_stores_every_call_through_an_rq_worker(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    result = run_agentlog(
        "demo", "--calls", "40", "--json", "--redis-url", redis_url, "--database-url", postgres_url,
        cwd=tmp_path, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["redis_url"] == redis_url
    assert report["stored"] == {
        "sync": {"tracked": 40, "stored": 40},
        "async": {"tracked": 40, "stored": 40},
    }
    assert sum(agent["calls"] for agent in report["agents"]) == 80
    assert (
        redis.Redis.from_url(redis_url).llen("rq:queue:llm_logging") == 0
    )  # the worker drained it
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        assert (
            connection.execute(sa.text("select count(*) from agentlog_executions")).scalar() == 80
        )
    engine.dispose()
    assert not (tmp_path / "agentlog.db").exists()  # the given database, not the embedded default
