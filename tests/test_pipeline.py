"""Async mode: buffer, flusher thread, rq transport, fallback chain, lifecycle."""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from freezegun import freeze_time
from rq import Queue

import agentlog
from agentlog import runtime
from agentlog.config import build_config
from agentlog.jobs import JSONSerializer
from agentlog.ops.worker import build_worker
from agentlog.store import Store, get_store
from agentlog.transport import RqTransport

from .support.postgres import free_port
from .support.waiting import wait_until

SECRET = "sk-ant-api03-" + "Zx9" * 20


def drain(redis_url: str) -> None:
    """Perform the queued jobs here, with ``agentlog worker --simple``'s worker."""
    build_worker(build_config(redis_url=redis_url), simple=True).work(burst=True)


def test_async_local_writes_from_the_flusher_thread(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agentlog.configure(mode="async", database_url=sqlite_url, flush_interval=0.05)
    writers: list[str] = []
    original = Store.insert_many

    def spy(self: Store, records: object) -> int:
        writers.append(threading.current_thread().name)
        return original(self, records)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "insert_many", spy)
    for i in range(250):
        with agentlog.track("bot", metadata={"i": i}):
            pass
    assert agentlog.flush(timeout=10)
    assert set(writers) == {"agentlog-flusher"}
    assert len(agentlog.executions()) == 250
    assert agentlog.stats()["logged"] == 250


def test_batches_go_to_rq_as_json_without_secrets(redis_url: str, postgres_url: str) -> None:
    agentlog.configure(mode="async", database_url=postgres_url, redis_url=redis_url, batch_size=40)
    for i in range(100):
        with agentlog.track("bot", model="gpt-4o") as run:
            run.parameters = {"api_key": SECRET, "i": i}
            run.prompt = f"my key is {SECRET}"
    assert agentlog.flush(timeout=10)
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("llm_logging", connection=connection, serializer=JSONSerializer)
    jobs = queue.get_jobs()
    sizes = [len(job.args[0]) for job in jobs]
    assert sum(sizes) == 100 and max(sizes) == 40  # how the last 60 split depends on timing
    assert all(job.func_name == "agentlog.jobs.log_executions" for job in jobs)
    assert all(job.retries_left == 2 for job in jobs)  # Retry(attempts=3)
    everything = b"".join(
        zlib.decompress(value) if key == b"data" else value
        for job_key in connection.keys("rq:job:*")
        for key, value in connection.hgetall(job_key).items()
    )
    assert SECRET.encode() not in everything
    assert b"[REDACTED]" in everything
    compressed = connection.hget(jobs[0].key, "data")
    assert compressed[:2] == b"\x78\x01"  # BatchJob's zlib level 1; rq's own Job uses 6
    raw = zlib.decompress(compressed)
    assert raw.startswith(b"[") and JSONSerializer.loads(raw)[0] == "agentlog.jobs.log_executions"
    assert agentlog.stats()["enqueued"] == 100
    drain(redis_url)
    assert get_store(postgres_url).count() == 100
    assert len(queue) == 0


def test_redis_down_falls_back_to_sync_and_opens_the_circuit(
    dead_redis_url: str,
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[int] = []
    original = RqTransport.enqueue

    def counting(self: RqTransport, batches: object) -> object:
        attempts.append(1)
        return original(self, batches)  # type: ignore[arg-type]

    monkeypatch.setattr(RqTransport, "enqueue", counting)
    caplog.set_level(logging.DEBUG, logger="agentlog")
    agentlog.configure(
        mode="async",
        database_url=sqlite_url,
        redis_url=dead_redis_url,
        batch_size=10,
        breaker_cooldown=60,
    )
    for _round in range(3):
        for _ in range(10):
            with agentlog.track("bot"):
                pass
        assert agentlog.flush(timeout=10)
    assert len(agentlog.executions()) == 30
    assert len(attempts) == 1  # the circuit opened after the first failure
    stats = agentlog.stats()
    assert stats["fallbacks"] == 3 and stats["enqueued"] == 0 and stats["logged"] == 30
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # one warning per interval; the others at DEBUG
    assert "falling back to sync: ConnectionError" in warnings[0]
    assert "circuit open" in caplog.text


def test_circuit_probes_again_after_the_cooldown(redis_url: str, sqlite_url: str) -> None:
    agentlog.configure(
        mode="async", database_url=sqlite_url, redis_url=redis_url, breaker_cooldown=0.2
    )
    pipeline = runtime.pipeline()
    pipeline.breaker.failure("simulated")
    with agentlog.track("during"):
        pass
    assert agentlog.flush(timeout=10)
    assert agentlog.stats()["fallbacks"] == 1
    time.sleep(0.25)
    with agentlog.track("after"):
        pass
    assert agentlog.flush(timeout=10)
    assert agentlog.stats()["enqueued"] == 1
    assert not pipeline.breaker.is_open


def test_redis_and_database_down_spool_then_replay(
    dead_redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    dead_db = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x"
    spool_dir = tmp_path / "spool"
    agentlog.configure(
        mode="async", database_url=dead_db, redis_url=dead_redis_url, spool_dir=spool_dir
    )
    ids = set()
    for _ in range(50):
        with agentlog.track("bot") as run:
            pass
        ids.add(run.id)
    assert agentlog.flush(timeout=10)
    assert agentlog.stats()["spooled"] == 50
    agentlog.configure(mode="async", database_url=postgres_url, spool_dir=spool_dir)
    with agentlog.track("trigger") as trigger:
        pass
    assert agentlog.flush(timeout=10)
    stored = [e.id for e in agentlog.executions()]
    assert sorted(stored) == sorted({*ids, trigger.id})
    assert list(spool_dir.iterdir()) == []


def test_full_buffer_spills_to_the_spool(sqlite_url: str, tmp_path: Path) -> None:
    agentlog.configure(
        mode="async",
        database_url=sqlite_url,
        buffer_size=5,
        batch_size=1000,
        flush_interval=60,
        spool_dir=tmp_path / "spool",
    )
    pipeline = runtime.pipeline()
    pipeline._start_thread()
    for _ in range(8):
        with agentlog.track("bot"):
            pass
    assert agentlog.stats()["spooled"] == 3
    assert agentlog.flush(timeout=10)
    assert agentlog.stats()["logged"] >= 5
    # the spilled records come back on the next successful write's replay
    assert len(agentlog.executions()) == 8


def test_flusher_survives_errors(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    agentlog.configure(mode="async", database_url=sqlite_url, flush_interval=0.05)
    pipeline = runtime.pipeline()
    original = pipeline._take_batches
    calls = {"n": 0}

    def flaky() -> list[list[agentlog.Execution]]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bug in a batch")
        return original()

    monkeypatch.setattr(pipeline, "_take_batches", flaky)
    with agentlog.track("first"):
        pass
    time.sleep(0.2)
    with agentlog.track("second"):
        pass
    assert agentlog.flush(timeout=10)
    assert "bug in a batch" in caplog.text
    assert [e.agent for e in agentlog.executions()] == ["second", "first"]


def test_a_dead_flusher_thread_is_restarted(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    agentlog.configure(mode="async", database_url=sqlite_url, flush_interval=0.05)
    with agentlog.track("one"):
        pass
    assert agentlog.flush(timeout=10)
    pipeline = runtime.pipeline()
    pipeline._stopping = True  # make the thread exit, as if it had died
    pipeline._wakeup.set()
    assert pipeline._thread is not None
    pipeline._thread.join(2)
    pipeline._stopping = False
    with agentlog.track("two"):
        pass
    assert agentlog.flush(timeout=10)
    assert {e.agent for e in agentlog.executions()} == {"one", "two"}
    assert "flusher thread had died" in caplog.text


@pytest.fixture
def release(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """A database whose inserts hang until the test sets the event."""
    release = threading.Event()
    original = Store.insert_many

    def hanging(self: Store, records: object) -> int:
        release.wait(10)
        return original(self, records)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "insert_many", hanging)
    yield release
    release.set()


def test_flush_and_shutdown_are_bounded_when_the_database_hangs(
    sqlite_url: str, release: threading.Event
) -> None:
    agentlog.configure(mode="async", database_url=sqlite_url, flush_interval=0.01)
    with agentlog.track("stuck"):
        pass
    started = time.monotonic()
    assert agentlog.flush(timeout=0.3) is False
    assert time.monotonic() - started < 2
    release.set()
    assert agentlog.shutdown(timeout=5) is True
    assert [e.agent for e in agentlog.executions()] == ["stuck"]


def test_shutdown_spools_what_it_could_not_hand_on(
    sqlite_url: str, release: threading.Event, tmp_path: Path
) -> None:
    agentlog.configure(
        mode="async",
        database_url=sqlite_url,
        flush_interval=0.01,
        batch_size=1,
        spool_dir=tmp_path / "spool",
    )
    for _ in range(3):
        with agentlog.track("bot"):
            pass
    time.sleep(0.1)
    flusher = runtime.pipeline()._thread
    assert agentlog.shutdown(timeout=0.2) is False
    assert agentlog.stats()["spooled"] == 2  # one was in flight, two still buffered
    release.set()
    assert flusher is not None
    flusher.join(5)  # the in-flight batch lands; then the thread ends
    assert not flusher.is_alive()
    assert len(agentlog.executions()) == 3  # and its write replayed the spool


class WatchedWakeup(threading.Event):
    """The flusher's wakeup event, noting each time the flusher goes back to wait on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def test_a_partial_batch_that_arrives_during_a_round_waits_for_the_next_wakeup(
    sqlite_url: str, release: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A steady stream of calls makes full batches, not one job per few records."""
    agentlog.configure(mode="async", database_url=sqlite_url, flush_interval=60, batch_size=10)
    pipeline = runtime.pipeline()
    wakeup = WatchedWakeup()
    monkeypatch.setattr(pipeline, "_wakeup", wakeup)
    batch_sizes: list[int] = []
    hand_on = pipeline._hand_on

    def spy(batches: list[list[agentlog.Execution]]) -> None:
        batch_sizes.extend(map(len, batches))
        hand_on(batches)

    monkeypatch.setattr(pipeline, "_hand_on", spy)

    for _ in range(10):  # a full batch wakes the flusher; its insert hangs
        with agentlog.track("first"):
            pass
    wait_until(lambda: batch_sizes == [10], "the flusher took the full batch")
    for _ in range(3):  # arrive while that batch is in flight
        with agentlog.track("meanwhile"):
            pass
    wakeup.waiting.clear()
    release.set()
    assert wakeup.waiting.wait(10), "the flusher never went back to waiting"

    assert pipeline.pending() == 3  # left for the next wakeup, not sent as a batch of 3 at once
    assert batch_sizes == [10]
    assert agentlog.flush(timeout=10)  # a flush takes them
    assert batch_sizes == [10, 3]
    assert len(agentlog.executions()) == 13


def test_async_works_under_freezegun(sqlite_url: str) -> None:
    agentlog.configure(mode="async", database_url=sqlite_url, flush_interval=0.05)
    with freeze_time("2026-05-01 12:00:00") as frozen:
        with agentlog.track("frozen"):
            frozen.tick(1.5)
        assert agentlog.flush(timeout=5)
        [stored] = agentlog.executions()
    assert (
        stored.started_at is not None
        and stored.started_at.isoformat() == "2026-05-01T12:00:00+00:00"
    )
    assert stored.duration_ms == 1500.0
    assert agentlog.shutdown(timeout=5)


def test_threads_and_asyncio_share_one_pipeline(sqlite_url: str) -> None:
    import asyncio

    agentlog.configure(mode="async", database_url=sqlite_url, flush_interval=0.02)

    async def task(i: int) -> None:
        async with agentlog.track("async-task", metadata={"i": i}):
            await asyncio.sleep(0)

    async def many() -> None:
        await asyncio.gather(*(task(i) for i in range(50)))

    def thread_body() -> None:
        asyncio.run(many())

    threads = [threading.Thread(target=thread_body) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert agentlog.flush(timeout=10)
    assert len(agentlog.executions()) == 200


def test_caller_thread_never_does_io_even_with_redis_blackholed(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that never answers costs the flusher, not the caller."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # accepts the TCP handshake, never answers a command
    port = listener.getsockname()[1]
    io_threads: list[str] = []
    original = RqTransport.enqueue

    def spy(self: RqTransport, batches: object) -> object:
        io_threads.append(threading.current_thread().name)
        return original(self, batches)  # type: ignore[arg-type]

    monkeypatch.setattr(RqTransport, "enqueue", spy)
    agentlog.configure(
        mode="async",
        database_url=sqlite_url,
        redis_url=f"redis://127.0.0.1:{port}/0",
        redis_timeout=0.2,
        flush_interval=0.01,
    )
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            with agentlog.track("bot"):
                pass
        assert agentlog.flush(timeout=10)
    listener.close()
    assert io_threads and set(io_threads) == {"agentlog-flusher"}
    assert len(agentlog.executions()) == 20
    assert "Timeout" in caplog.text


def test_a_record_put_after_shutdown_is_spooled_not_lost(sqlite_url: str) -> None:
    agentlog.configure(mode="async", database_url=sqlite_url)
    stale = runtime.pipeline()  # as another thread might still hold it
    assert agentlog.shutdown(timeout=5)
    stale.put(agentlog.Execution(agent="late"))
    assert agentlog.stats()["spooled"] == 1
    with agentlog.track("next"):  # a new pipeline; its write replays the spool
        pass
    assert agentlog.flush(timeout=5)
    assert {e.agent for e in agentlog.executions()} == {"late", "next"}
