"""Helpers for the operations commands' tests: run the CLI, put jobs on a real queue."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import redis
from click.testing import Result
from rq import Queue
from typer.testing import CliRunner

import agentlog
from agentlog.cli import app
from agentlog.config import Config, build_config
from agentlog.jobs import JSONSerializer
from agentlog.ops.worker import build_worker
from agentlog.serialize import Wire, to_wire
from agentlog.transport import RqTransport, connect_redis

AGENTLOG = str(Path(sys.executable).with_name("agentlog"))


def invoke(*args: str) -> Result:
    """Run ``agentlog ARGS`` in this process (CliRunner), output captured."""
    return CliRunner().invoke(app, list(args))


def run_agentlog(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTLOG_")}
    env["AGENTLOG_SPOOL_DIR"] = os.environ["AGENTLOG_SPOOL_DIR"]
    return subprocess.run(
        [AGENTLOG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def config_for(redis_url: str, database_url: str, **options: Any) -> Config:
    return build_config(redis_url=redis_url, database_url=database_url, **options)


def wire(config: Config, agent: str = "support-bot", model: str = "gpt-4o", **fields: Any) -> Wire:
    fields.setdefault("started_at", datetime.now(timezone.utc))
    fields.setdefault("status", "success")
    return to_wire(agentlog.Execution(agent=agent, model=model, **fields), config)


def enqueue_batches(config: Config, sizes: Sequence[int], **fields: Any) -> list[Wire]:
    """One ``log_executions`` job per size, enqueued as the pipeline does; returns the wires."""
    batches = [[wire(config, **fields) for _ in range(size)] for size in sizes]
    transport = RqTransport(config, connect_redis(config))
    transport.enqueue(batches)
    transport.connection.close()
    return [record for batch in batches for record in batch]


def queue_for(config: Config) -> Queue:
    assert config.redis_url is not None
    return Queue(
        config.queue_name,
        connection=redis.Redis.from_url(config.redis_url),
        serializer=JSONSerializer,
    )


def drain_in_process(config: Config) -> None:
    """Perform the queued jobs here with ``agentlog worker --simple``'s worker (it counts runs)."""
    agentlog.configure(database_url=config.database_url, redis_url=config.redis_url)
    build_worker(config, simple=True).work(burst=True, logging_level="WARNING")


def days_ago(days: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)
