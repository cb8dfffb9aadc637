"""Library behaviour through the plugin's own fixtures, in every mode.

The same tests run with records written on the caller's thread (sync), waiting
in a fake Redis until drained (async), and performed at once by a real rq
worker (inline): what the library stores must not depend on the path.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import agentlog as agentlog_module
from pytest_agentlog import assert_fell_back, assert_logged, assert_not_logged

MODES = ["sync", "async", "inline"]
SECRET = "sk-proj-" + "Q7w" * 16
every_mode = pytest.mark.parametrize(
    "mode", [pytest.param(m, marks=pytest.mark.agentlog(mode=m)) for m in MODES]
)


@every_mode
def test_tracked_call_is_stored(agentlog: Any, mode: str) -> None:
    assert agentlog.mode == mode
    with agentlog_module.track("support-bot", model="gpt-4o", tenant_id="acme") as run:
        run.usage(input_tokens=100, output_tokens=20)
    row = assert_logged(run, status="success", total_tokens=120, tenant_id="acme")
    assert row.total_cost is not None and row.total_cost > 0


@every_mode
def test_errors_and_nesting(agentlog: Any, mode: str) -> None:
    def plan() -> tuple[agentlog_module.Execution, agentlog_module.Execution]:
        with agentlog_module.track("planner") as parent:
            with agentlog_module.track("tool") as child:
                pass
            raise TimeoutError((parent, child))

    with pytest.raises(TimeoutError) as info:
        plan()
    parent, child = info.value.args[0]
    assert_logged(parent, status="timeout", error_class="TimeoutError")
    assert_logged(child, status="success", parent_id=parent.id, trace_id=str(parent.id))


@every_mode
def test_decorated_async_agent(agentlog: Any, mode: str) -> None:
    @agentlog_module.agent("summarizer", model="gpt-4o-mini")
    async def summarize(text: str, api_key: str) -> str:
        return text.upper()

    assert asyncio.run(summarize("hi", api_key=SECRET)) == "HI"
    [row] = agentlog.executions(agent="summarizer")
    assert row.parameters == {"text": "hi", "api_key": "[REDACTED]"}
    assert row.response == "HI"


@pytest.mark.agentlog(mode="async")
def test_secrets_never_cross_the_queue(agentlog_queue: Any) -> None:
    with agentlog_module.track("bot") as run:
        run.prompt = f"my key is {SECRET}"
        run.metadata = {"headers": {"Authorization": f"Bearer {SECRET}"}}
    [job] = agentlog_queue.jobs
    assert SECRET.encode() not in job.raw
    assert job.executions[0]["prompt"] == "my key is [REDACTED]"
    agentlog_queue.drain()
    assert_logged(run, prompt="my key is [REDACTED]")


@pytest.mark.agentlog(mode="async")
def test_queue_outage_falls_back_and_nothing_is_lost(
    agentlog: Any, agentlog_queue: Any, agentlog_outage: Any
) -> None:
    runs = []
    with agentlog_outage.queue(kind="connection", times=2):
        for _ in range(4):
            with agentlog_module.track("bot") as run:
                pass
            runs.append(run)
    assert len(agentlog_queue) == 2
    assert_fell_back(times=2, reason="ConnectionError")
    for run in runs:
        assert_logged(run)
    assert agentlog.stats()["fallbacks"] == 2


@pytest.mark.agentlog(mode="async")
def test_failing_job_ends_in_the_failed_registry(agentlog_queue: Any, agentlog_outage: Any) -> None:
    with agentlog_module.track("bot") as run:
        pass
    with agentlog_outage.database(), pytest.raises(Exception, match=r"OperationalError|simulated"):
        agentlog_queue.drain()
    [failed] = agentlog_queue.failed
    assert "OperationalError" in failed.error
    assert_not_logged(run)  # until the job is requeued


@pytest.mark.agentlog(mode="sync")
def test_database_outage_spools_then_replays(agentlog: Any, agentlog_outage: Any) -> None:
    with agentlog_outage.database(), agentlog_module.track("bot") as lost:
        pass
    assert [r["id"] for r in agentlog.spooled] == [str(lost.id)]
    with agentlog_module.track("bot") as after:
        pass
    assert_logged(after)
    assert_logged(lost)  # replayed after the next successful write
    assert agentlog.spooled == []


def test_clock_drives_timestamps_and_durations(agentlog: Any, agentlog_clock: Any) -> None:
    with agentlog_module.track("bot") as run:
        agentlog_clock.tick(2.5)
    row = assert_logged(run)
    assert row.duration_ms == 2500.0
    assert (row.completed_at - row.started_at).total_seconds() == 2.5
