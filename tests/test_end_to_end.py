"""Whole-system runs: app threads and processes, real redis-server, real rq workers, PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

import agentlog
from agentlog.jobs import JSONSerializer

from .support.postgres import free_port

pytestmark = pytest.mark.slow
RQ = str(Path(sys.executable).with_name("rq"))
AGENTLOG = str(Path(sys.executable).with_name("agentlog"))


def track_many(count: int, agent: str = "bot") -> set[str]:
    """Track ``count`` calls; the ids of their records."""
    ids = set()
    for _ in range(count):
        with agentlog.track(agent) as run:
            pass
        ids.add(str(run.id))
    return ids


def worker_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "AGENTLOG_DATABASE_URL": database_url}


def run_burst_worker(redis_url: str, database_url: str) -> None:
    """A real rq worker process, as `rq worker` runs it in production."""
    subprocess.run(
        [
            RQ,
            "worker",
            "--burst",
            "--url",
            redis_url,
            "--serializer",
            "agentlog.jobs.JSONSerializer",
            "llm_logging",
        ],
        env=worker_env(database_url),
        check=True,
        capture_output=True,
        timeout=120,
    )


def row_ids(database_url: str) -> list[str]:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        ids = [str(r[0]) for r in connection.execute(sa.text("select id from agentlog_executions"))]
    engine.dispose()
    return ids


def test_four_threads_by_250_calls_make_exactly_1000_rows(
    redis_url: str, postgres_url: str
) -> None:
    agentlog.configure(mode="async", database_url=postgres_url, redis_url=redis_url, batch_size=50)
    expected: set[str] = set()
    lock = threading.Lock()

    def app_thread(n: int) -> None:
        for i in range(250):
            with agentlog.track(f"agent-{n}", model="gpt-4o", metadata={"i": i}) as run:
                run.usage(input_tokens=10, output_tokens=2)
            with lock:
                expected.add(str(run.id))

    threads = [threading.Thread(target=app_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert agentlog.flush(timeout=30)
    assert agentlog.stats()["enqueued"] == 1000
    run_burst_worker(redis_url, postgres_url)
    ids = row_ids(postgres_url)
    assert len(ids) == 1000 and set(ids) == expected


def test_redis_down_every_row_arrives_through_the_fallback(
    dead_redis_url: str, postgres_url: str
) -> None:
    agentlog.configure(mode="async", database_url=postgres_url, redis_url=dead_redis_url)
    ids = track_many(300)
    assert agentlog.flush(timeout=30)
    assert set(row_ids(postgres_url)) == ids
    assert agentlog.stats()["fallbacks"] >= 1 and agentlog.stats()["dropped"] == 0


def test_redis_and_database_down_spooled_then_replayed_by_the_cli(
    dead_redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    dead_db = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x"
    agentlog.configure(
        mode="async", database_url=dead_db, redis_url=dead_redis_url, spool_dir=spool_dir
    )
    ids = track_many(120)
    assert agentlog.flush(timeout=30)
    assert agentlog.stats()["spooled"] == 120
    # A copy of one file stands for a replay that died after committing: the
    # same records replayed again must not duplicate a row.
    first = sorted(spool_dir.iterdir())[0]
    first.with_name("spool-0-copy.jsonl").write_bytes(first.read_bytes())
    replay = subprocess.run(
        [AGENTLOG, "replay", "--database-url", postgres_url, "--spool-dir", str(spool_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    assert sorted(row_ids(postgres_url)) == sorted(ids)
    assert list(spool_dir.iterdir()) == []


def children_of(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                children.append(int(entry.name))
    return children


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    import redis
    from rq import Queue, Worker
    from agentlog.jobs import JSONSerializer
    connection = redis.Redis.from_url(sys.argv[1])
    queue = Queue("llm_logging", connection=connection, serializer=JSONSerializer)
    Worker([queue], connection=connection, serializer=JSONSerializer).work(burst=True)
    """
)


def test_worker_killed_mid_job_loses_and_duplicates_nothing(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    # One attempt: the abandoned job goes to the FailedJobRegistry (with attempts
    # left, rq would retry it by itself) and an operator requeues it.
    agentlog.configure(
        mode="async",
        database_url=postgres_url,
        redis_url=redis_url,
        batch_size=100,
        retry=agentlog.Retry(attempts=1),
    )
    ids = track_many(100)
    assert agentlog.flush(timeout=10)

    # Hold a lock so the job's INSERT blocks: the worker is then killed mid-job.
    engine = sa.create_engine(postgres_url)
    blocker = engine.connect()
    blocker.execute(sa.text("LOCK TABLE agentlog_executions IN ACCESS EXCLUSIVE MODE"))
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    worker = subprocess.Popen(
        [sys.executable, str(script), redis_url],
        env=worker_env(postgres_url),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("llm_logging", connection=connection, serializer=JSONSerializer)
    started = StartedJobRegistry(queue=queue)
    deadline = time.monotonic() + 30
    while not started.get_job_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    [job_id] = started.get_job_ids()
    time.sleep(0.3)  # the work horse is now blocked inside the insert
    # Kill the worker and its work horse (rq puts the horse in its own process
    # group), as if the machine died.
    horses = children_of(worker.pid)
    assert horses, "the worker should be running the job in a work horse"
    for pid in [*horses, worker.pid]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(10)
    blocker.rollback()
    blocker.close()
    assert row_ids(postgres_url) == []

    # rq notices the abandoned job once its heartbeat is stale; force that moment.
    started.cleanup(timestamp=int(time.time()) + 10_000)
    failed = FailedJobRegistry(queue=queue)
    assert job_id in failed.get_job_ids()
    failed.requeue(job_id)
    run_burst_worker(redis_url, postgres_url)
    assert sorted(row_ids(postgres_url)) == sorted(ids)
    engine.dispose()


CHILD_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import agentlog
    agentlog.configure(mode="async", database_url=sys.argv[1], flush_interval=60, batch_size=1000)
    for _ in range(5):
        with agentlog.track("parent-before-fork"):
            pass
    pid = os.fork()
    if pid == 0:
        for _ in range(3):
            with agentlog.track("child"):
                pass
        ok = agentlog.flush(timeout=10)
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    with agentlog.track("parent-after-fork"):
        pass
    assert agentlog.flush(timeout=10)
    """
)


def test_fork_child_logs_its_own_records_and_parent_records_once(
    postgres_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "fork.py"
    script.write_text(CHILD_SCRIPT)
    subprocess.run([sys.executable, str(script), postgres_url], check=True, timeout=60)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        counts = dict(
            connection.execute(
                sa.text("select agent, count(*) from agentlog_executions group by agent")
            ).all()
        )
    engine.dispose()
    assert counts == {"parent-before-fork": 5, "child": 3, "parent-after-fork": 1}


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    import agentlog
    agentlog.configure(mode="async", database_url=sys.argv[1], redis_url=sys.argv[2] or None,
                       flush_interval=60, batch_size=10_000)
    for i in range(500):
        with agentlog.track("exiting", metadata={"i": i}):
            pass
    # no flush(): the atexit hook must hand everything on
    """
)


@pytest.mark.parametrize("transport", ["local", "rq"])
def test_exit_without_flush_keeps_every_record(
    transport: str, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)
    redis_arg = redis_url if transport == "rq" else ""
    subprocess.run([sys.executable, str(script), postgres_url, redis_arg], check=True, timeout=60)
    if transport == "rq":
        assert len(Queue("llm_logging", connection=redis.Redis.from_url(redis_url))) == 1
        run_burst_worker(redis_url, postgres_url)
    assert len(row_ids(postgres_url)) == 500
