"""Failure messages: what was expected, what was found, what to try."""

from __future__ import annotations

import textwrap

import pytest

HEADER = """
    import re
    import agentlog as lib
    import pytest
    from pytest_agentlog import (
        assert_enqueued, assert_fell_back, assert_logged, assert_not_logged,
    )

    def run(name="support-bot", **fields):
        with lib.track(name, model="gpt-4o", **fields) as execution:
            execution.usage(input_tokens=10, output_tokens=5)
        return execution
"""


def failure_of(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(textwrap.dedent(HEADER) + textwrap.dedent(body))
    result = pytester.runpytest("-p", "no:randomly", *args)
    result.assert_outcomes(failed=1)
    # __tracebackhide__: the traceback ends in the test, not inside the helpers.
    assert "pytest_agentlog/assertions.py" not in result.stdout.str()
    assert "pytest_agentlog/queue.py" not in result.stdout.str()
    return result


def test_assert_logged_when_nothing_was_logged(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog):
            execution = lib.Execution(agent="support-bot")
            assert_logged(execution, status="success")
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: agentlog: assert_logged failed",
            "E       expected: id=*, status='success'",
            "E       found: nothing was logged in this test",
            "E       try:",
            "E         - the execution is still running: assert after the "
            "`with agentlog.track(...)` block (or the @agentlog.agent call) has ended",
        ]
    )


def test_assert_logged_shows_the_closest_rows_with_a_diff(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog):
            run("planner")
            run("support-bot", tenant_id="acme")
            assert_logged("01890000-0000-7000-8000-000000000000", agent="support-bot")
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       expected: id=01890000-0000-7000-8000-000000000000, agent='support-bot'",
            "E       found: 2 other row(s) in this test; the closest:",
            "E         id=*, agent='support-bot', status='success', model='gpt-4o'",
            "E           id: expected 01890000-0000-7000-8000-000000000000, found *",
            "E           agent: ok ('support-bot')",
            "E         id=*, agent='planner', status='success', model='gpt-4o'",
            "E           agent: expected 'support-bot', found 'planner'",
            "E       try:",
            "E         - check that the code under test calls agentlog.track() / "
            "agentlog.log() / an @agentlog.agent function inside this test, and that it "
            "finished before the assert",
            "E         - the test runs in sync mode (the default); "
            "agentlog.stats() = {'logged': 2,*",
        ]
    )


def test_assert_logged_field_diff_and_redaction_hint(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog):
            execution = run(metadata={"password": "hunter2"}, tenant_id="acme")
            assert_logged(
                execution,
                status="error",
                tenant_id="acme",
                metadata={"password": "hunter2"},
                input_tokens=lambda n: n > 100,
            )
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       found: the row, but 3 field(s) differ:",
            "E           status: expected 'error', found 'success'",
            "E           tenant_id: ok ('acme')",
            "E           metadata: expected {'password': 'hunter2'}, "
            "found {'password': '[REDACTED]'}",
            "E           input_tokens: expected a value for which *<lambda> is true, found 10",
            "E       try:",
            "E         - metadata went through Config.redaction before storage (placeholder "
            "'[REDACTED]', max_value_length 10000): expect the redacted value",
        ]
    )


def test_assert_logged_names_the_spool_and_the_log(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog, agentlog_outage):
            with agentlog_outage.database():
                execution = run()
            assert_logged(execution)
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       found: nothing was logged in this test",
            "E         - it is in the spool (*): the database write failed; see harness.spooled "
            "and agentlog_outage",
            "E       agentlog logged:",
            "E         WARNING: agentlog: database write failed (OperationalError: *",
        ]
    )


def test_assert_logged_names_failed_jobs_and_fallbacks(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        @pytest.mark.agentlog(mode="async")
        def test_it(agentlog, agentlog_queue, agentlog_outage):
            with agentlog_outage.queue(times=1):
                first = run("first")
            second = run("second")
            with agentlog_outage.database(), pytest.raises(Exception):
                agentlog_queue.drain()
            assert_logged(second)
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       found: 1 other row(s) in this test; the closest:",
            "E         - the queue failed 1 time(s) (last: ConnectionError: *); see "
            "agentlog_outage.fallbacks",
            "E         - 1 rq job(s) failed (agentlog_queue.failed): "
            "sqlalchemy.exc.OperationalError: *",
        ]
    )


def test_assert_not_logged(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog):
            assert_not_logged(run())
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: agentlog: assert_not_logged failed",
            "E       expected: no stored row with id=*",
            "E       found: id=*, agent='support-bot', status='success', model='gpt-4o'",
            "E       try:",
            "E         - the test runs in sync mode (the default)",
        ]
    )


def test_assert_enqueued_in_sync_mode(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog):
            run()
            assert_enqueued(agent="support-bot")
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: agentlog: assert_enqueued failed",
            "E       expected: at least one record enqueued with agent='support-bot'",
            "E       found: nothing was enqueued in this test",
            "E       try:",
            "E         - this test runs in sync mode, where nothing crosses the queue: use the "
            "agentlog_async fixture or @pytest.mark.agentlog(mode='async')",
        ]
    )


def test_assert_enqueued_shows_the_closest_records(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog_async):
            run("planner")
            assert_enqueued(count=1, agent="support-bot", model=re.compile("^gpt"))
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       expected: 1 record(s) enqueued with agent='support-bot', "
            "model=a match for '^gpt'",
            "E       found: 1 record(s) in 1 job(s), none matching; the closest:",
            "E         id=*, agent='planner', status='success', model='gpt-4o'",
            "E           agent: expected 'support-bot', found 'planner'",
            "E           model: ok ('gpt-4o')",
            "E         - the records are as they crossed Redis: redacted, with ids, times and "
            "costs as text*",
        ]
    )


def test_assert_enqueued_count(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog_async):
            run(); run()
            assert_enqueued(count=3, agent="support-bot")
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       expected: 3 record(s) enqueued with agent='support-bot'",
            "E       found: 2 matching record(s) in 2 job(s)",
        ]
    )


def test_assert_fell_back_without_a_fallback(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog):
            run()
            assert_fell_back(reason="Timeout")
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: agentlog: assert_fell_back failed",
            "E       expected: at least one fallback with a reason containing 'Timeout'",
            "E       found: no fallback in this test (every enqueue went through)",
            "E       try:",
            "E         - this test runs in sync mode, where nothing crosses the queue, so it never "
            "falls back: use agentlog_async or @pytest.mark.agentlog(mode='async')",
            "E         - break the queue first: `with agentlog_outage.queue(kind='connection'):` "
            "around the code that logs",
        ]
    )


def test_assert_fell_back_with_other_reasons(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog_async, agentlog_outage):
            with agentlog_outage.queue(kind="connection"):
                run()
            assert_fell_back(times=1, reason=re.compile("Timeout"))
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "E       expected: 1 fallback(s) with a reason matching a match for 'Timeout'",
            "E       found: 1 fallback(s), 0 matching:",
            "E         1 execution(s): ConnectionError: Error 111 connecting to redis. "
            "Connection refused. (simulated by agentlog_outage)",
        ]
    )


def test_assertion_helpers_check_field_names(pytester: pytest.Pytester) -> None:
    result = failure_of(
        pytester,
        """
        def test_it(agentlog):
            assert_logged(run(), stauts="success")
        """,
    )
    result.stdout.fnmatch_lines(
        ["E       TypeError: assert_logged() got unknown field(s): stauts; fields: agent, model, *"]
    )
