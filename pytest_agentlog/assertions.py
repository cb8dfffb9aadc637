"""Assertion helpers: what a test states about its logging, with messages that say what to try.

Each finds the active harness (the ``agentlog`` fixture, or ``harness()``) and
drains pending work first, so the same test passes in every mode. A failure
says what was expected, what was found and what to try.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from agentlog.execution import Execution

from . import matching
from .outage import Fallback
from .queue import QueuedJob
from .testbed import Harness, active

ExecutionOrId = Execution | uuid.UUID | str | Mapping[str, Any]
ReasonMatcher = str | re.Pattern[str] | Callable[[str], bool]


def assert_logged(execution_or_id: ExecutionOrId, **fields: Any) -> Execution:
    """Assert that the execution was stored (with ``fields``, if given); returns the stored row.

    Field values may be plain values, compiled regexes or predicates.
    """
    __tracebackhide__ = True
    matching.check_fields(fields, "assert_logged()")
    harness = active()
    execution_id = matching.as_id(execution_or_id)
    harness.flush()
    found = harness.rows(ids=[execution_id])
    expected = {"id": execution_id, **fields}
    if found and not matching.mismatches(found[0], fields):
        return found[0]
    raise AssertionError(_not_logged_message(harness, execution_or_id, expected, found))


def assert_not_logged(execution_or_id: ExecutionOrId) -> None:
    """Assert that the execution was not stored (after draining pending work)."""
    __tracebackhide__ = True
    harness = active()
    execution_id = matching.as_id(execution_or_id)
    harness.flush()
    found = harness.rows(ids=[execution_id])
    if not found:
        return
    lines = [
        "agentlog: assert_not_logged failed",
        f"expected: no stored row with id={execution_id}",
        f"found: {matching.summary(found[0])}",
        "try:",
    ]
    lines.extend(_hints_stored(harness))
    raise AssertionError("\n".join(lines))


def assert_enqueued(count: int | None = None, **fields: Any) -> QueuedJob:
    """Assert that records matching ``fields`` crossed the queue; returns the first matching job.

    ``count`` is the number of matching records (None: at least one).
    """
    __tracebackhide__ = True
    return active().queue.assert_enqueued(count, **fields)


def assert_fell_back(
    times: int | None = None, reason: ReasonMatcher | None = None
) -> list[Fallback]:
    """Assert that the queue failed and the library wrote synchronously instead.

    ``times`` is the number of fallbacks (one per batch; None: at least one);
    ``reason`` a text to find in the reason (case-insensitive), a compiled regex
    or a predicate. Returns the matching fallbacks. The fallbacks so far count
    as expected by the test (no strict-fallback failure at teardown).
    """
    __tracebackhide__ = True
    harness = active()
    fallbacks = list(harness.fallbacks)
    matched = [f for f in fallbacks if reason is None or _reason_matches(f.reason, reason)]
    if matched and (times is None or len(matched) == times):
        harness.acknowledge_fallbacks()
        return matched
    raise AssertionError(_fell_back_message(harness, times, reason, fallbacks, matched))


def _reason_matches(text: str, reason: ReasonMatcher) -> bool:
    if isinstance(reason, re.Pattern):
        return reason.search(text) is not None
    if isinstance(reason, str):
        return reason.lower() in text.lower()
    return bool(reason(text))


def _describe_reason(reason: ReasonMatcher | None) -> str:
    if reason is None:
        return ""
    if isinstance(reason, str):
        return f" with a reason containing {reason!r}"
    return f" with a reason matching {matching.show(reason)}"


# -- messages -------------------------------------------------------------


def _not_logged_message(
    harness: Harness,
    execution_or_id: ExecutionOrId,
    expected: dict[str, Any],
    found: list[Execution],
) -> str:
    execution_id = expected["id"]
    lines = ["agentlog: assert_logged failed", f"expected: {matching.describe_expected(expected)}"]
    fields = {k: v for k, v in expected.items() if k != "id"}
    if found:
        lines.append(
            f"found: the row, but {len(matching.mismatches(found[0], fields))} field(s) differ:"
        )
        lines.extend(matching.diff_lines(found[0], fields))
        lines.append("try:")
        lines.extend(_hints_fields(harness, found[0], fields))
        return "\n".join(lines)
    others = harness.rows()
    if not others:
        lines.append("found: nothing was logged in this test")
    else:
        lines.append(f"found: {len(others)} other row(s) in this test; the closest:")
        with_agent = dict(expected)
        if isinstance(execution_or_id, Execution):
            with_agent.setdefault("agent", execution_or_id.agent)
        for row in matching.closest(others, with_agent):
            lines.append(f"  {matching.summary(row)}")
            lines.extend(matching.diff_lines(row, with_agent))
    lines.append("try:")
    lines.extend(_hints_missing(harness, execution_or_id, execution_id))
    return "\n".join(lines)


def _hints_fields(harness: Harness, row: Execution, fields: dict[str, Any]) -> list[str]:
    hints = []
    placeholder = harness.config.redaction.placeholder
    values = row.to_dict()
    redacted = [
        name
        for name in matching.mismatches(row, fields)
        if placeholder in repr(values.get(name)) or "truncated" in repr(values.get(name))
    ]
    if redacted:
        hints.append(
            f"  - {', '.join(redacted)} went through Config.redaction before storage "
            f"(placeholder {placeholder!r}, max_value_length "
            f"{harness.config.redaction.max_value_length}): expect the redacted value"
        )
    hints.append(
        "  - stored values are normalised: costs as Decimal, times as aware UTC datetimes, "
        "tuples as lists, text cut to its column's length; a predicate "
        "(lambda value: ...) or re.compile(...) matches loosely"
    )
    return hints


def _hints_missing(
    harness: Harness, execution_or_id: ExecutionOrId, execution_id: uuid.UUID
) -> list[str]:
    hints = []
    if isinstance(execution_or_id, Execution) and execution_or_id.status == "running":
        hints.append(
            "  - the execution is still running: assert after the "
            "`with agentlog.track(...)` block (or the @agentlog.agent call) has ended"
        )
    spooled = [r for r in harness.spooled if r.get("id") == str(execution_id)]
    if spooled:
        hints.append(
            f"  - it is in the spool ({harness.spool_dir}): the database write failed; "
            "see harness.spooled and agentlog_outage"
        )
    if harness.fallbacks:
        hints.append(
            f"  - the queue failed {len(harness.fallbacks)} time(s) "
            f"(last: {harness.fallbacks[-1].reason}); see agentlog_outage.fallbacks"
        )
    failed = harness.queue.failed_jobs() if harness.mode != "sync" else []
    if failed:
        hints.append(
            f"  - {len(failed)} rq job(s) failed (agentlog_queue.failed): "
            f"{_error_line(failed[-1].error)}"
        )
    stats = harness.stats()
    if stats.get("dropped"):
        hints.append(f"  - {stats['dropped']} execution(s) were dropped: see the log below")
    if not hints:
        hints.append(
            "  - check that the code under test calls agentlog.track() / agentlog.log() / an "
            "@agentlog.agent function inside this test, and that it finished before the assert"
        )
        hints.append(
            f"  - the test runs in {harness.mode} mode ({harness.mode_source}); "
            f"agentlog.stats() = {stats}"
        )
    messages = harness.log_messages[-5:]
    if messages:
        hints.append("agentlog logged:")
        hints.extend(f"  {m}" for m in messages)
    return hints


def _error_line(traceback_text: str | None) -> str:
    """The ``Type: message`` line of a formatted traceback (rq keeps the job's as text)."""
    for line in reversed((traceback_text or "").splitlines()):
        if line and not line[0].isspace() and not line.startswith(("(", "[", "Traceback")):
            return line if len(line) <= 200 else line[:199] + "…"
    return "(no traceback)"


def _hints_stored(harness: Harness) -> list[str]:
    return [
        "  - the row was written in this test: check the condition under which the code "
        "under test logs, or look at the row (agentlog.executions())",
        f"  - the test runs in {harness.mode} mode ({harness.mode_source})",
    ]


def _fell_back_message(
    harness: Harness,
    times: int | None,
    reason: ReasonMatcher | None,
    fallbacks: list[Fallback],
    matched: list[Fallback],
) -> str:
    wanted = "at least one fallback" if times is None else f"{times} fallback(s)"
    lines = [
        "agentlog: assert_fell_back failed",
        f"expected: {wanted}{_describe_reason(reason)}",
    ]
    if not fallbacks:
        lines.append("found: no fallback in this test (every enqueue went through)")
    else:
        lines.append(f"found: {len(fallbacks)} fallback(s), {len(matched)} matching:")
        lines.extend(f"  {f.executions} execution(s): {f.reason}" for f in fallbacks)
    lines.append("try:")
    if harness.mode == "sync":
        lines.append(
            "  - this test runs in sync mode, where nothing crosses the queue, so it never "
            "falls back: use agentlog_async or @pytest.mark.agentlog(mode='async')"
        )
    if not fallbacks:
        lines.append(
            "  - break the queue first: `with agentlog_outage.queue(kind='connection'):` "
            "around the code that logs"
        )
    else:
        lines.append(
            "  - one fallback is one batch handed on; in the harness each logged execution "
            "is its own batch"
        )
    return "\n".join(lines)
