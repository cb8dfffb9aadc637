"""The fixtures, used directly by this suite (the plugin is loaded through its entry point)."""

from __future__ import annotations

import logging
import zlib
from datetime import timedelta

import orjson
import pytest
import sqlalchemy.exc
from rq import SimpleWorker

import agentlog
import pytest_agentlog
from agentlog import runtime
from agentlog.config import get_config
from agentlog.store import CHUNK_SIZE, get_store
from pytest_agentlog import (
    AgentlogClock,
    AgentlogOutage,
    AgentlogQueue,
    Harness,
    assert_enqueued,
    assert_fell_back,
    assert_logged,
    assert_not_logged,
)
from pytest_agentlog.clock import START

SECRET = "sk-ant-api03-" + "Q7x" * 27 + "AA"


def run_agent(name: str = "support-bot", **fields: object) -> agentlog.Execution:
    with agentlog.track(name, model="gpt-4o", **fields) as run:
        run.usage(input_tokens=812, output_tokens=95)
        run.response = {"answer": "42"}
    return run


# -- the harness ------------------------------------------------------------


def test_default_mode_is_sync_and_writes_on_the_callers_thread(agentlog: Harness) -> None:
    assert agentlog.mode == "sync"
    assert get_config().mode == "sync"
    run = run_agent()
    # Stored before track() returned: no drain needed, nothing enqueued.
    assert [row.id for row in agentlog.rows()] == [run.id]
    assert len(agentlog.queue) == 0
    row = assert_logged(run, status="success", total_tokens=907, response={"answer": "42"})
    assert row.model == "gpt-4o"


def test_database_is_a_fresh_in_memory_sqlite(agentlog: Harness) -> None:
    assert agentlog.database_url == "sqlite://"
    assert agentlog.executions() == []
    assert get_store(agentlog.database_url).count() == 0


@pytest.mark.agentlog(mode="async")
def test_async_mode_jobs_wait_in_the_fake_queue(
    agentlog: Harness, agentlog_queue: AgentlogQueue
) -> None:
    run = run_agent()
    # Visible the moment track() returned, not performed yet.
    assert len(agentlog_queue) == 1
    assert agentlog_queue.pending == 1
    assert agentlog.rows() == []
    assert agentlog_queue.executions[0]["id"] == str(run.id)
    rows = agentlog.executions()  # drains first
    assert [row.id for row in rows] == [run.id]
    assert agentlog_queue.pending == 0
    assert agentlog.stats()["enqueued"] == 1
    assert agentlog.stats()["logged"] == 1


@pytest.mark.agentlog(mode="inline")
def test_inline_mode_performs_jobs_at_once_with_a_real_worker(
    agentlog: Harness, agentlog_queue: AgentlogQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    performed: list[str] = []
    real = SimpleWorker.perform_job

    def spy(self: SimpleWorker, job: object, queue: object, *args: object) -> object:
        performed.append(job.func_name)  # type: ignore[attr-defined]
        return real(self, job, queue, *args)

    monkeypatch.setattr(SimpleWorker, "perform_job", spy)
    run = run_agent()
    assert performed == ["agentlog.jobs.log_executions"]
    assert agentlog_queue.pending == 0
    assert len(agentlog_queue) == 1
    assert [row.id for row in agentlog.rows()] == [run.id]


def test_agentlog_sync_fixture_forces_sync(agentlog_sync: Harness) -> None:
    assert agentlog_sync.mode == "sync"
    assert agentlog_sync.mode_source.startswith("a mode fixture")


@pytest.mark.agentlog(mode="inline")
def test_agentlog_async_fixture_beats_the_marker(agentlog_async: Harness) -> None:
    assert agentlog_async.mode == "async"


@pytest.mark.agentlog(mode="async")
def test_a_marker_alone_gives_the_test_a_harness() -> None:
    run = run_agent()
    assert pytest_agentlog.harness  # the helpers below find the harness by themselves
    assert_enqueued(count=1, agent="support-bot")
    assert_logged(run)


def test_application_config_is_kept_except_the_services(
    request: pytest.FixtureRequest, tmp_path: object
) -> None:
    app = agentlog.configure(
        mode="async",
        database_url="sqlite:///never-created.db",
        redis_url="redis://app-redis:6379/3",
        redaction=agentlog.Redaction(keys=("customer_email",)),
        persist_responses=False,
        queue_name="app_queue",
    )
    harness: Harness = request.getfixturevalue("agentlog")
    config = get_config()
    assert config.redaction == app.redaction
    assert config.persist_responses is False
    assert config.queue_name == "app_queue"
    assert config.database_url == "sqlite://"
    assert config.mode == "sync"
    with agentlog.track("bot", metadata={"customer_email": "ann@example.com"}) as run:
        run.response = "kept out"
    row = assert_logged(run, response=None)
    assert row.metadata == {"customer_email": "[REDACTED]"}
    assert harness.queue.queue.name == "app_queue"


def test_application_config_comes_back_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import agentlog
        from agentlog import runtime
        from agentlog.transport import connect_redis

        APP = agentlog.configure(mode="async", database_url="sqlite:///app.db")

        def test_uses_the_harness(agentlog):
            assert agentlog.config is not APP
            assert agentlog.config.database_url == "sqlite://"

        def test_after(request):
            assert agentlog.get_config() is APP
            assert runtime.settings.redis_factory is connect_redis
            assert runtime.settings.eager is False
            assert runtime.settings.on_fallback == []
            assert runtime.settings.on_enqueued == []
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_agentlog_config_fixture_is_overridable(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def agentlog_config():
            return {"persist_prompts": False, "batch_size": 7}
        """
    )
    pytester.makepyfile(
        """
        import agentlog
        from pytest_agentlog import assert_logged

        def test_options(agentlog):
            assert agentlog.config.batch_size == 7
            with agentlog.track("bot", prompt="hello") as run:
                pass
            assert_logged(run, prompt=None)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bach_size": 3}, "agentlog_config: unknown option(s) bach_size"),
        ({"mode": "async"}, "'mode' is set by the plugin; use --agentlog-mode"),
        ({"redis_url": "redis://x"}, "'redis_url' is set by the plugin; use --agentlog-redis-url"),
    ],
)
def test_agentlog_config_rejects_what_it_cannot_set(
    pytester: pytest.Pytester, options: dict[str, object], message: str
) -> None:
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture
        def agentlog_config():
            return {options!r}
        """
    )
    pytester.makepyfile(
        """
        import agentlog
        from agentlog import runtime

        APP = agentlog.configure(database_url="sqlite:///app.db")

        def test_it(agentlog):
            pass

        def test_after_the_failed_setup_the_app_state_is_back():
            assert agentlog.get_config() is APP
            assert runtime.settings.eager is False
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines([f"*{message}*"])


# -- agentlog_queue -----------------------------------------------------------


@pytest.mark.agentlog(mode="async")
def test_queue_decodes_what_is_really_in_redis(
    agentlog: Harness, agentlog_queue: AgentlogQueue
) -> None:
    with agentlog.track("bot", parameters={"api_key": SECRET, "q": "hi"}) as run:
        pass
    [job] = agentlog_queue.jobs
    assert job.func_name == "agentlog.jobs.log_executions"
    stored = agentlog.redis.hget(f"rq:job:{job.id}", "data")
    assert stored == job.raw
    assert zlib.decompress(job.raw) == job.data
    assert orjson.loads(job.data)[2][0][0]["parameters"] == {"api_key": "[REDACTED]", "q": "hi"}
    assert job.executions == agentlog_queue.executions
    assert agentlog_queue.executions[0]["id"] == str(run.id)
    assert SECRET.encode() not in job.data
    assert list(agentlog_queue) == [job]


@pytest.mark.agentlog(mode="async")
def test_assert_enqueued_matches_values_regexes_and_predicates(
    agentlog_queue: AgentlogQueue,
) -> None:
    import re

    first, second = run_agent("a"), run_agent("b")
    job = agentlog_queue.assert_enqueued(id=first.id, agent="a")
    assert job.executions[0]["id"] == str(first.id)
    assert agentlog_queue.assert_enqueued(count=2, model="gpt-4o") is agentlog_queue.jobs[0]
    assert_enqueued(count=1, agent=re.compile("^b$"), input_tokens=lambda n: n > 800)
    assert_enqueued(id=str(second.id), total_cost=lambda cost: cost is not None)
    with pytest.raises(AssertionError, match=r"expected: 3 record\(s\) enqueued"):
        agentlog_queue.assert_enqueued(count=3, model="gpt-4o")
    with pytest.raises(TypeError, match=r"unknown field.*modle"):
        agentlog_queue.assert_enqueued(modle="gpt-4o")


@pytest.mark.agentlog(mode="async")
def test_drain_reraises_a_jobs_error_and_keeps_it_failed(
    agentlog: Harness, agentlog_queue: AgentlogQueue, agentlog_outage: AgentlogOutage
) -> None:
    run = run_agent()
    with (
        agentlog_outage.database(kind="timeout"),
        pytest.raises(sqlalchemy.exc.OperationalError, match="statement timeout") as raised,
    ):
        agentlog_queue.drain()
    assert any("raised by rq job" in note for note in raised.value.__notes__)
    [failed] = agentlog_queue.failed
    assert failed.executions[0]["id"] == str(run.id)
    assert "OperationalError" in (failed.error or "")
    assert_not_logged(run)


@pytest.mark.agentlog(mode="async")
def test_drain_retries_like_rq_then_stores(
    agentlog_queue: AgentlogQueue, agentlog_outage: AgentlogOutage
) -> None:
    run = run_agent()
    # The first attempt fails, rq's Retry (Config.retry) runs it again at once.
    with agentlog_outage.database(times=1) as outage:
        assert agentlog_queue.drain() == 1
    assert outage.failures == 1
    assert agentlog_queue.failed == []
    assert_logged(run)


@pytest.mark.agentlog(mode="inline")
def test_inline_job_errors_are_raised_at_the_next_assertion(
    agentlog_queue: AgentlogQueue, agentlog_outage: AgentlogOutage
) -> None:
    with agentlog_outage.database():
        run = run_agent()  # the worker fails three times; track() itself never raises
    with pytest.raises(sqlalchemy.exc.OperationalError):
        assert_logged(run)
    assert len(agentlog_queue.failed) == 1
    assert_not_logged(run)


@pytest.mark.agentlog(mode="async")
def test_clear_forgets_and_empties(agentlog: Harness, agentlog_queue: AgentlogQueue) -> None:
    run = run_agent()
    agentlog_queue.clear()
    assert len(agentlog_queue) == 0
    assert agentlog_queue.pending == 0
    assert agentlog_queue.executions == []
    assert_not_logged(run)


# -- agentlog_outage ------------------------------------------------------------


@pytest.mark.agentlog(mode="async")
@pytest.mark.parametrize(
    ("kind", "error"), [("connection", "ConnectionError"), ("timeout", "TimeoutError")]
)
def test_queue_outage_falls_back_to_sync(
    agentlog: Harness,
    agentlog_queue: AgentlogQueue,
    agentlog_outage: AgentlogOutage,
    kind: str,
    error: str,
) -> None:
    with agentlog_outage.queue(kind=kind) as outage:  # type: ignore[arg-type]
        first, second = run_agent(), run_agent()
    assert outage.failures == 2
    assert not outage.active
    assert len(agentlog_queue) == 0
    # Written on the caller's thread: stored without any drain.
    assert {row.id for row in agentlog.rows()} == {first.id, second.id}
    assert [f.executions for f in agentlog_outage.fallbacks] == [1, 1]
    assert all(f.reason.startswith(error) for f in agentlog_outage.fallbacks)
    assert_fell_back(times=2, reason=error)
    third = run_agent()
    assert len(agentlog_queue) == 1  # the queue is back
    assert_logged(third)


@pytest.mark.agentlog(mode="async")
def test_queue_outage_fails_the_next_n_enqueues_after_some_pass(
    agentlog_queue: AgentlogQueue, agentlog_outage: AgentlogOutage
) -> None:
    outage = agentlog_outage.queue(times=2, after=1)  # a plain call, restored below
    runs = [run_agent(f"agent-{i}") for i in range(5)]
    assert (outage.calls, outage.failures) == (5, 2)
    assert [r["agent"] for r in agentlog_queue.executions] == ["agent-0", "agent-3", "agent-4"]
    assert len(agentlog_outage.fallbacks) == 2
    outage.restore()
    assert not outage.active
    for run in runs:
        assert_logged(run)


def test_outage_arguments_are_checked(agentlog_outage: AgentlogOutage) -> None:
    with pytest.raises(ValueError, match="kind must be one of 'connection', 'timeout'"):
        agentlog_outage.queue(kind="flood")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times must be at least 1"):
        agentlog_outage.database(times=0)
    with pytest.raises(ValueError, match="after must be an int >= 0"):
        agentlog_outage.queue(after=-1)


def test_database_outage_in_sync_mode_spools(
    agentlog: Harness, agentlog_outage: AgentlogOutage
) -> None:
    with agentlog_outage.database() as outage:
        run = run_agent()
    assert outage.failures == 1
    assert_not_logged(run)
    assert [record["id"] for record in agentlog.spooled] == [str(run.id)]
    assert agentlog.stats()["spooled"] == 1
    assert any("database write failed" in message for message in agentlog.log_messages)


def test_database_outage_mid_batch_rolls_the_whole_batch_back(
    agentlog: Harness, agentlog_outage: AgentlogOutage
) -> None:
    from agentlog import writer
    from agentlog.serialize import to_wire

    config = get_config()
    executions = []
    for i in range(CHUNK_SIZE + 100):
        execution = agentlog.Execution(agent=f"bulk-{i}", status="success")
        execution.started_at = START + timedelta(seconds=i)
        executions.append(execution)
    wires = [to_wire(e, config) for e in executions]
    with agentlog_outage.database(after=1, times=1) as outage:
        assert writer.store(wires, config) is False  # the second statement failed
    assert (outage.calls, outage.failures) == (2, 1)
    assert agentlog.rows() == []  # one transaction: the first chunk was rolled back too
    assert len(agentlog.spooled) == CHUNK_SIZE + 100


# -- strictness -------------------------------------------------------------


@pytest.mark.agentlog(mode="async", allow_fallback=True)
def test_allow_fallback_lets_a_fallback_pass(agentlog: Harness) -> None:
    agentlog.queue_gate.open("connection", None, 0)
    run = run_agent()
    assert len(agentlog.fallbacks) == 1
    assert_logged(run)


def test_an_unasked_fallback_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import agentlog, pytest
        from pytest_agentlog import assert_fell_back

        def break_queue(harness):
            # A broken queue the test did not set up through agentlog_outage.
            harness.queue_gate.open("connection", None, 0)

        @pytest.mark.agentlog(mode="async")
        def test_silent(agentlog):
            break_queue(agentlog)
            with agentlog.track("bot"):
                pass

        @pytest.mark.agentlog(mode="async")
        def test_asserted(agentlog):
            break_queue(agentlog)
            with agentlog.track("bot"):
                pass
            assert_fell_back(times=1, reason="connection refused")

        @pytest.mark.agentlog(mode="async")
        def test_more_after_the_assert(agentlog):
            break_queue(agentlog)
            with agentlog.track("bot"):
                pass
            assert_fell_back()
            with agentlog.track("bot"):
                pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_silent*",
            "*the queue failed and the library fell back to writing synchronously 1 time(s)*",
            "*1 execution(s): ConnectionError: Error 111 connecting to redis. Connection refused.*",
            "*use the agentlog_outage fixture or pytest_agentlog.assert_fell_back(); else allow "
            "it with @pytest.mark.agentlog(allow_fallback=True)*",
            "*ERROR at teardown of test_more_after_the_assert*",
        ]
    )


def test_an_unasked_spool_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import agentlog

        def test_db_broke(agentlog):
            agentlog.database_gate.open("timeout", None, 0)
            with agentlog.track("bot"):
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*1 execution(s) were spooled to disk (the database write failed)*",
            "*agentlog logged:*",
            "*statement timeout (simulated by agentlog_outage)*",
            "*If the test breaks the database on purpose, use the agentlog_outage fixture*",
        ]
    )


def test_an_unseen_inline_job_error_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import agentlog, pytest

        @pytest.mark.agentlog(mode="inline")
        def test_job_failed(agentlog, agentlog_outage):
            with agentlog_outage.database():
                with agentlog.track("bot"):
                    pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*1 rq job(s) failed in this test and nobody looked:*",
            "*OperationalError*",
            "*try: assert on them with agentlog_queue.failed*",
        ]
    )


# -- agentlog_clock -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async", "inline"])
def test_clock_ticks_move_durations_exactly(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(
        """
        from datetime import timedelta
        import agentlog
        from pytest_agentlog import assert_logged

        def test_tick(agentlog, agentlog_clock):
            start = agentlog_clock.now()
            with agentlog.track("bot") as run:
                agentlog_clock.tick(2.5)
            row = assert_logged(run, duration_ms=2500)
            assert row.duration_ms == 2500.0
            assert row.started_at == start == agentlog_clock.start
            assert row.completed_at == start + timedelta(seconds=2.5)
            assert agentlog.flush(timeout=1) is True
        """
    )
    pytester.runpytest(f"--agentlog-mode={mode}").assert_outcomes(passed=1)


def test_flush_and_shutdown_return_under_the_frozen_clock(
    agentlog: Harness, agentlog_clock: AgentlogClock
) -> None:
    # The library's own background thread (no Redis), under frozen time.
    runtime.settings.eager = False
    agentlog.configure(mode="async", database_url=agentlog.database_url, flush_interval=30.0)
    with agentlog.track("bot") as run:
        agentlog_clock.tick(0.25)
    assert runtime.pipeline().eager is False  # the background flusher thread writes it
    assert agentlog.flush(timeout=5) is True
    assert agentlog.shutdown(timeout=5) is True
    row = assert_logged(run, duration_ms=250)
    assert row.started_at == START
    with pytest.raises(ValueError, match="only moves forward"):
        agentlog_clock.tick(-1)
    assert agentlog_clock.move_to("2030-05-01T00:00:00") == START.replace(
        year=2030, month=5, day=1, hour=0
    )


# -- the context-manager twin --------------------------------------------------


def test_harness_context_manager_twin() -> None:
    with pytest_agentlog.harness(mode="async") as harness:
        run = run_agent()
        assert harness.mode == "async"
        assert harness.queue.pending == 1
        assert_logged(run)
    with pytest.raises(RuntimeError, match="no agentlog test harness is active"):
        assert_logged(run)
    with pytest_agentlog.harness() as harness:
        assert harness.mode == "sync"  # the run's mode
        assert harness.rows() == []  # a fresh database


def test_harness_context_manager_is_strict_about_fallbacks() -> None:
    block = pytest_agentlog.harness(mode="async")
    harness = block.__enter__()
    harness.queue_gate.open("connection", None, 0)
    run_agent()
    with pytest.raises(AssertionError, match="fell back to writing synchronously"):
        block.__exit__(None, None, None)
    with pytest_agentlog.harness(mode="async", allow_fallback=True) as harness:
        harness.queue_gate.open("connection", None, 0)
        run_agent()


def test_harness_cannot_nest(agentlog: Harness) -> None:
    with pytest.raises(RuntimeError, match="already active"), pytest_agentlog.harness():
        pass
    with (
        pytest.raises(ValueError, match="invalid mode 'fast'"),
        pytest_agentlog.harness(mode="fast"),
    ):
        pass


def test_helpers_without_a_harness_say_how_to_get_one() -> None:
    for call in (
        lambda: assert_logged("01890000-0000-7000-8000-000000000000"),
        lambda: assert_enqueued(),
        lambda: assert_fell_back(),
    ):
        with pytest.raises(RuntimeError, match=r"Request the `agentlog` fixture"):
            call()


def test_agentlog_logs_are_kept_for_messages(
    agentlog: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agentlog")
    with agentlog.track("bot", not_a_field=1):
        pass
    assert any("unknown field(s) not_a_field" in message for message in agentlog.log_messages)
