"""No state leaks between tests: in random order, and across pytest-xdist workers."""

from __future__ import annotations

import pytest

# Every test checks that it starts from nothing, leaves its traces, and that the
# application's own state is back once a harness is gone. Any order must pass.
LEAKY_SUITE = """
    import datetime
    import agentlog as lib
    import pytest
    from hypothesis import given, settings, strategies as st
    from agentlog import runtime
    from agentlog.transport import connect_redis
    import pytest_agentlog
    from pytest_agentlog import assert_logged, assert_fell_back

    APP = lib.configure(mode="async", database_url="sqlite:///app.db", queue_name="app_q")
    MODES = ["sync", "async", "inline"]


    def fresh(harness):
        assert harness.executions() == []
        assert len(harness.queue) == 0
        assert harness.queue.pending == 0
        assert harness.redis.keys("*") == []
        assert harness.fallbacks == []
        assert lib.stats()["logged"] == 0
        assert lib.get_config().queue_name == "app_q"


    @pytest.mark.parametrize(
        "mode", [pytest.param(mode, marks=pytest.mark.agentlog(mode=mode)) for mode in MODES]
    )
    @pytest.mark.parametrize("n", range(3))
    def test_logs_its_own_rows(agentlog, mode, n):
        assert agentlog.mode == mode
        fresh(agentlog)
        name = f"agent-{mode}-{n}"
        runs = []
        for _ in range(n + 1):
            with lib.track(name) as run:
                pass
            runs.append(run)
        for run in runs:
            assert_logged(run)
        assert {row.agent for row in agentlog.executions()} == {name}
        assert lib.stats()["logged"] == n + 1


    @pytest.mark.agentlog(mode="async")
    def test_breaks_the_queue(agentlog, agentlog_outage):
        fresh(agentlog)
        agentlog_outage.queue()  # never restored by the test itself
        with lib.track("broken") as run:
            pass
        assert_fell_back(times=1)
        assert_logged(run)


    @pytest.mark.agentlog(mode="sync")
    def test_breaks_the_database(agentlog, agentlog_outage):
        fresh(agentlog)
        agentlog_outage.database()
        with lib.track("spooled"):
            pass
        assert len(agentlog.spooled) == 1


    def test_freezes_time(agentlog, agentlog_clock):
        fresh(agentlog)
        assert datetime.datetime.now().year == 2025


    def test_reconfigures_inside_the_test(agentlog):
        fresh(agentlog)
        lib.configure(mode="sync", database_url="sqlite://", queue_name="inner")
        runtime.settings.eager = False


    @pytest.mark.parametrize("n", range(3))
    def test_without_a_harness_the_app_state_is_back(n):
        assert lib.get_config() is APP
        assert runtime.settings.redis_factory is connect_redis
        assert runtime.settings.eager is False
        assert runtime.settings.on_enqueued == []
        assert runtime.settings.on_fallback == []
        assert runtime._pipeline is None
        assert datetime.datetime.now().year != 2025
        assert pytest_agentlog.testbed.current() is None


    @settings(max_examples=5, deadline=None)
    @given(st.sampled_from(MODES), st.integers(min_value=1, max_value=3))
    def test_examples_each_get_a_harness(mode, n):
        with pytest_agentlog.harness(mode=mode) as harness:
            fresh(harness)
            for _ in range(n):
                with lib.track("example"):
                    pass
            assert len(harness.executions()) == n
"""


def test_random_order_has_no_cross_test_leakage(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaky=LEAKY_SUITE)
    for seed in ("1", "2", "3"):
        result = pytester.runpytest("-p", "randomly", f"--randomly-seed={seed}")
        result.assert_outcomes(passed=17)
        result.stdout.fnmatch_lines([f"Using --randomly-seed={seed}"])


def test_xdist_workers_are_isolated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaky=LEAKY_SUITE)
    result = pytester.runpytest(
        "-p", "xdist", "-n", "2", "-p", "randomly", "--agentlog-mode=inline", "--assert=plain"
    )
    result.assert_outcomes(passed=17)
    result.stdout.fnmatch_lines(["*2 workers*"])
