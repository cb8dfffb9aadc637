"""Properties, with the plugin's own strategies inside ``pytest_agentlog.harness()``."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy.exc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentlog
import pytest_agentlog
from agentlog.config import get_config
from agentlog.execution import Execution
from agentlog.serialize import to_wire
from agentlog.store import CHUNK_SIZE, get_store
from pytest_agentlog import assert_logged
from pytest_agentlog.strategies import (
    batches,
    executions,
    payloads_with_secrets,
    redaction_configs,
)

# A second, independent in-memory database next to the harness's ``sqlite://``.
OTHER_DATABASE = "sqlite:///:memory:"


def stored(url: str) -> list[dict[str, Any]]:
    return [row.to_dict() for row in get_store(url).executions()]


# -- batch insertion ---------------------------------------------------------


def check_batch_equals_singles(batch: list[Execution]) -> None:
    with pytest_agentlog.harness(mode="sync") as harness:
        wires = [to_wire(execution, get_config()) for execution in batch]
        batched = get_store(harness.database_url)
        singles = get_store(OTHER_DATABASE)

        new_rows = batched.insert_many(wires)
        assert new_rows == sum(singles.insert_many([wire]) for wire in wires)

        first_ids = list(dict.fromkeys(execution.id for execution in batch))
        assert new_rows == len(first_ids)  # duplicates ignored
        rows = stored(harness.database_url)
        assert rows == stored(OTHER_DATABASE)
        # Order kept: newest first, i.e. the batch order reversed (started_at grows).
        assert [row["id"] for row in rows] == first_ids[::-1]
        # Of two records with one id, the first one is stored.
        firsts = {wire["id"]: wire for wire in reversed(wires)}
        for row in rows:
            first = firsts[str(row["id"])]
            assert (row["agent"], row["status"]) == (first["agent"], first["status"])
        # Idempotent: a retried job or a replayed spool adds nothing.
        assert batched.insert_many(wires) == 0


@settings(max_examples=30, deadline=None)
@given(batches(max_size=60))
def test_a_batch_insert_stores_what_single_inserts_store(batch: list[Execution]) -> None:
    check_batch_equals_singles(batch)


@settings(max_examples=5, deadline=None)
@given(batches(min_size=CHUNK_SIZE - 1, max_size=2 * CHUNK_SIZE + 1))
def test_batch_inserts_across_chunk_boundaries(batch: list[Execution]) -> None:
    check_batch_equals_singles(batch)


@settings(max_examples=4, deadline=None)
@given(batches(min_size=CHUNK_SIZE - 1, max_size=2 * CHUNK_SIZE + 1, duplicates=False))
def test_chunk_boundaries_commit_as_one_transaction(batch: list[Execution]) -> None:
    with pytest_agentlog.harness(mode="sync", allow_fallback=True) as harness:
        wires = [to_wire(execution, get_config()) for execution in batch]
        store = get_store(harness.database_url)
        chunks = -(-len(wires) // CHUNK_SIZE)
        # The last statement of the batch fails: nothing of the batch stays.
        with (
            harness.outage.database(after=chunks - 1, times=1),
            pytest.raises(sqlalchemy.exc.OperationalError),
        ):
            store.insert_many(wires)
        assert store.count() == 0
        assert store.insert_many(wires) == len(wires)
        assert store.count() == len(wires)


@settings(max_examples=15, deadline=None)
@given(st.lists(executions(), min_size=1, max_size=3), st.sampled_from(["sync", "async", "inline"]))
def test_every_logged_execution_is_found_in_every_mode(records: list[Execution], mode: str) -> None:
    with pytest_agentlog.harness(mode=mode) as harness:
        for record in records:
            agentlog.log(record)
        for record in records:
            row = assert_logged(record, agent=record.agent[:255], status=record.status)
            assert row.input_tokens == record.input_tokens
        assert len(harness.executions()) == len(records)


# -- redaction: no planted secret survives ------------------------------------


@st.composite
def redaction_and_payload(draw: st.DrawFn) -> tuple[agentlog.Redaction, Any, list[str]]:
    redaction = draw(redaction_configs())
    payload, planted = draw(payloads_with_secrets(redaction))
    return redaction, payload, planted


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a decoded value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)
    elif value is not None:
        yield str(value)


def decoded(data: bytes) -> Any:
    """JSON when it is JSON (what crosses Redis), else the text."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")


def redis_contents(client: Any) -> list[Any]:
    """Every value in the fake Redis, decoded (job hashes, lists, sets, sorted sets)."""
    values: list[Any] = []
    for key in client.keys("*"):
        kind = client.type(key).decode()
        if kind == "hash":
            for field, value in client.hgetall(key).items():
                values.append(field.decode("utf-8", "replace"))
                if field == b"data":
                    value = zlib.decompress(value)
                values.append(decoded(value))
        elif kind == "list":
            values.extend(decoded(v) for v in client.lrange(key, 0, -1))
        elif kind in ("set", "zset"):
            members = client.smembers(key) if kind == "set" else client.zrange(key, 0, -1)
            values.extend(decoded(v) for v in members)
        elif kind == "string":
            values.append(decoded(client.get(key)))
    return values


def assert_no_secret(planted: list[str], where: str, value: Any) -> None:
    texts = list(strings_in(value))
    for secret in planted:
        # The whole secret, and each long line of it (a PEM body must not survive in part).
        pieces = [secret, *(line for line in secret.splitlines() if len(line) >= 16)]
        for piece in pieces:
            leaked = [text for text in texts if piece in text]
            assert not leaked, f"a planted secret survived into {where}: {piece!r}"


def call_leaky_agent(tracker: agentlog.track, payload: Any, planted: list[str]) -> None:
    with tracker as run:
        run.response = payload
        run.system_prompt = f"you may use {planted[0]}"
        raise RuntimeError(f"the model echoed {planted[-1]} back")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=redaction_and_payload())
def test_no_planted_secret_survives(
    case: tuple[agentlog.Redaction, Any, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    redaction, payload, planted = case
    caplog.clear()
    with pytest_agentlog.harness(mode="async", config={"redaction": redaction}) as harness:
        tracker = agentlog.track(
            "leaky-agent",
            parameters=payload,
            prompt=payload,
            metadata={"request": payload},
            tool_calls=[payload],
        )
        with pytest.raises(RuntimeError) as raised:
            call_leaky_agent(tracker, payload, planted)
        assert planted[-1] in str(raised.value)  # the caller's own exception is untouched
        run = tracker.execution

        # What crossed the queue: the job as stored in Redis, and everything else there.
        [job] = harness.queue.jobs
        assert_no_secret(planted, "the enqueued job", decoded(job.data))
        assert_no_secret(planted, "the raw job bytes", decoded(zlib.decompress(job.raw)))
        assert_no_secret(planted, "Redis", redis_contents(harness.redis))

        # A job that fails on the database: its error, in the test and in Redis.
        with (
            harness.outage.database(kind="timeout"),
            pytest.raises(sqlalchemy.exc.OperationalError) as raised,
        ):
            harness.queue.drain()
        assert_no_secret(planted, "the job's error", [str(raised.value), *raised.value.__notes__])
        [failed] = harness.queue.failed
        assert_no_secret(planted, "the failed job's traceback", failed.error)
        assert_no_secret(planted, "Redis after the failure", redis_contents(harness.redis))

        # Requeued and performed: the stored row.
        harness.queue.queue.failed_job_registry.requeue(failed.id)
        row = assert_logged(run, status="error", error_class="RuntimeError")
        assert_no_secret(planted, "the stored row", [row.to_dict()])
        assert_no_secret(planted, "the error message", row.error_message)

    assert_no_secret(
        planted,
        "the log records",
        [record.getMessage() for record in caplog.records]
        + [str(record.args) for record in caplog.records],
    )
