"""The same application test passes in sync, async and inline mode."""

from __future__ import annotations

import pytest

APP = """
    import asyncio
    import agentlog

    # The application configures agentlog at import, as apps do.
    agentlog.configure(
        mode="async",
        database_url="sqlite:///production.db",
        redis_url="redis://redis.internal:6379/0",
        redaction=agentlog.Redaction(keys=("api_key", "customer_email")),
    )


    @agentlog.agent("summarizer", model="gpt-4o-mini")
    def summarize(text, api_key):
        return text[:10]


    async def answer(question):
        async with agentlog.track("support-bot", model="gpt-4o", tenant_id="acme") as run:
            await asyncio.sleep(0)
            run.usage(input_tokens=812, output_tokens=95)
            run.response = {"answer": "42", "customer_email": "ann@example.com"}
            return run


    def crash():
        with agentlog.track("planner") as run:
            raise ValueError("no plan")
"""

APP_TESTS = """
    import asyncio
    from decimal import Decimal
    import pytest
    import agentlog
    from pytest_agentlog import assert_logged, assert_not_logged

    import app


    def test_decorated_call_is_logged_redacted(agentlog):
        assert app.summarize("a long text to summarize", api_key="sk-secret") == "a long tex"
        [row] = agentlog.executions(agent="summarizer")
        assert row.parameters == {"text": "a long text to summarize", "api_key": "[REDACTED]"}
        assert row.response == "a long tex"
        assert row.model == "gpt-4o-mini"


    def test_async_agent_with_usage(agentlog):
        run = asyncio.run(app.answer("why?"))
        row = assert_logged(
            run,
            agent="support-bot",
            status="success",
            tenant_id="acme",
            total_tokens=907,
            total_cost=lambda cost: isinstance(cost, Decimal) and cost > 0,
            response={"answer": "42", "customer_email": "[REDACTED]"},
        )
        assert row.duration_ms >= 0


    def test_errors_are_logged_and_reraised(agentlog):
        with pytest.raises(ValueError, match="no plan"):
            app.crash()
        [row] = agentlog.executions(status="error")
        assert (row.error_class, row.error_message) == ("ValueError", "no plan")


    def test_nothing_else_is_logged(agentlog):
        run = agentlog.Execution(agent="never-logged")
        assert_not_logged(run)
        assert agentlog.executions() == []


    def test_the_app_database_and_redis_are_never_touched(agentlog):
        app.summarize("x", api_key="k")
        agentlog.flush()
        assert agentlog.config.database_url == "sqlite://"
        assert agentlog.config.redaction.keys == ("api_key", "customer_email")
"""


@pytest.mark.parametrize("mode", ["sync", "async", "inline"])
def test_the_same_application_tests_pass_in_every_mode(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(app=APP, test_app=APP_TESTS)
    pytester.syspathinsert()
    result = pytester.runpytest(f"--agentlog-mode={mode}")
    result.assert_outcomes(passed=5)
    assert not (pytester.path / "production.db").exists()


def test_modes_differ_where_they_should(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=APP)
    pytester.syspathinsert()
    pytester.makepyfile(
        """
        import pytest
        import app

        @pytest.mark.parametrize(
            "mode, stored_at_once, waiting",
            [
                pytest.param(mode, stored, waiting, marks=pytest.mark.agentlog(mode=mode))
                for mode, stored, waiting in [("sync", 1, 0), ("async", 0, 1), ("inline", 1, 0)]
            ],
        )
        def test_mode(agentlog, agentlog_queue, mode, stored_at_once, waiting):
            assert agentlog.mode == mode
            app.summarize("text", api_key="k")
            assert len(agentlog.rows()) == stored_at_once  # rows() does not drain
            assert agentlog_queue.pending == waiting
            assert len(agentlog_queue) == (0 if mode == "sync" else 1)
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)
