from __future__ import annotations

import copy
import dataclasses
import pickle
import threading
import time
import uuid
from datetime import timezone
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agentlog
from agentlog.clock import from_wall_ns, iso_from_wall_ns
from agentlog.execution import new_id
from agentlog.serialize import to_wire


def test_ids_are_time_ordered_uuid7() -> None:
    ids = []
    for _ in range(5):
        ids.append(new_id())
        time.sleep(0.002)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids)
    assert len({new_id() for _ in range(10_000)}) == 10_000
    # a real UUID: round-trips through text and compares with uuid.UUID
    assert uuid.UUID(str(ids[0])) == ids[0]


def test_usage_adds_up_and_total_is_derived(tmp_path: object) -> None:
    agentlog.configure(mode="sync", database_url=f"sqlite:///{tmp_path}/a.db")
    with agentlog.track("bot", model="gpt-4o") as run:
        run.usage(input_tokens=100, output_tokens=10)
        run.usage(input_tokens=50, output_tokens=5, cached_tokens=20)
    assert (run.input_tokens, run.output_tokens, run.cached_tokens) == (150, 15, 20)
    assert run.total_tokens == 165
    assert run.started_at is not None and run.started_at.tzinfo is timezone.utc


def test_costs_from_genai_prices_for_a_known_model(tmp_path: object) -> None:
    agentlog.configure(mode="sync", database_url=f"sqlite:///{tmp_path}/a.db")
    with agentlog.track("bot", model="gpt-4o") as run:
        run.usage(input_tokens=1_000_000, output_tokens=1_000_000)
    [stored] = agentlog.executions()
    # gpt-4o: $2.50 / M input, $10 / M output
    assert stored.input_cost == pytest.approx(2.5)
    assert stored.output_cost == pytest.approx(10)
    assert stored.total_cost == pytest.approx(12.5)
    assert stored.provider == "openai"


def test_given_costs_are_kept(tmp_path: object) -> None:
    agentlog.configure(mode="sync", database_url=f"sqlite:///{tmp_path}/a.db")
    with agentlog.track("bot", model="gpt-4o", total_cost=0.5) as run:
        run.usage(input_tokens=10, output_tokens=10)
    assert agentlog.executions()[0].total_cost == pytest.approx(0.5)


def test_unknown_model_leaves_cost_empty(tmp_path: object) -> None:
    agentlog.configure(mode="sync", database_url=f"sqlite:///{tmp_path}/a.db")
    with agentlog.track("bot", model="in-house-llm-7") as run:
        run.usage(input_tokens=10, output_tokens=10)
    [stored] = agentlog.executions()
    assert stored.total_cost is None and stored.input_cost is None
    assert stored.total_tokens == 20
    assert agentlog.stats()["errors"] == 0


def test_from_dict_names_unknown_fields() -> None:
    with pytest.raises(TypeError, match="colour"):
        agentlog.Execution.from_dict({"agent": "a", "colour": "red"})
    with pytest.raises(TypeError, match="agent"):
        agentlog.Execution.from_dict({"model": "m"})


def _tracked_record() -> agentlog.Execution:
    """A record as ``track()`` leaves it, without handing it on."""
    from agentlog.tracking import track

    tracker = track("bot", model="gpt-4o")
    with mock.patch("agentlog.runtime.submit"), tracker as run:
        run.usage(input_tokens=7, output_tokens=3)
    return run


def test_fields_track_leaves_for_later_read_as_set_on_exit() -> None:
    from agentlog.tracking import track

    tracker = track("bot")
    assert tracker.execution.started_at is None and tracker.execution.completed_at is None
    with mock.patch("agentlog.runtime.submit"), tracker as run:
        assert run.started_at is not None and run.completed_at is None
        assert run.duration_ms is None and run.total_tokens is None
        run.usage(input_tokens=7)
        assert run.total_tokens == 7
    assert run.started_at.tzinfo is timezone.utc
    assert run.completed_at is not None and run.completed_at >= run.started_at
    assert isinstance(run.duration_ms, float) and run.duration_ms >= 0
    assert run.metadata == {} and run.metadata is run.metadata
    # The id is ordered by the start, not by when it was first read.
    assert run.id.version == 7
    assert run.id.int >> 80 == int(run.started_at.timestamp() * 1000)


def test_total_tokens_follows_usage_unless_set() -> None:
    record = agentlog.Execution(agent="bot", input_tokens=5)
    assert record.total_tokens == 5
    record.usage(output_tokens=2)
    assert record.total_tokens == 7
    assert agentlog.Execution(agent="bot").total_tokens is None
    assert agentlog.Execution(agent="bot", input_tokens=5, total_tokens=9).total_tokens == 9
    # A bad count never makes reading the record raise (to_wire reports it).
    assert agentlog.Execution(agent="bot", input_tokens="5", output_tokens=1).total_tokens is None  # type: ignore[arg-type]


def _read_id(record: agentlog.Execution, barrier: threading.Barrier, seen: list[uuid.UUID]) -> None:
    barrier.wait()
    seen.append(record.id)


def test_threads_reading_a_lazy_id_at_once_agree() -> None:
    for _ in range(200):
        record = _tracked_record()
        seen: list[uuid.UUID] = []
        barrier = threading.Barrier(4)
        threads = [
            threading.Thread(target=_read_id, args=(record, barrier, seen)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(seen)) == 1 and record.id == seen[0]


def test_copies_and_pickles_keep_the_id_and_times() -> None:
    record = _tracked_record()
    for twin in (copy.copy(record), copy.deepcopy(record), pickle.loads(pickle.dumps(record))):
        assert twin == record
        assert (twin.id, twin.started_at, twin.completed_at, twin.duration_ms) == (
            record.id,
            record.started_at,
            record.completed_at,
            record.duration_ms,
        )
    assert dataclasses.replace(record).id == record.id


def test_a_missing_attribute_is_still_an_attribute_error() -> None:
    record = _tracked_record()
    with pytest.raises(AttributeError, match="no attribute 'colour'"):
        record.colour  # noqa: B018


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_iso_from_wall_ns_formats_as_the_datetime_would(ns: int) -> None:
    assert iso_from_wall_ns(ns) == from_wall_ns(ns).isoformat()
    assert (
        iso_from_wall_ns(ns - ns % 1_000_000_000)
        == from_wall_ns(ns).replace(microsecond=0).isoformat()
    )


def test_the_wire_times_of_a_tracked_record_match_its_fields() -> None:
    record = _tracked_record()
    wire = to_wire(record, agentlog.Config())
    assert wire["started_at"] == record.started_at.isoformat()
    assert wire["completed_at"] == record.completed_at.isoformat()
    record.started_at = record.started_at.replace(year=2001)  # set explicitly: that one wins
    assert to_wire(record, agentlog.Config())["started_at"].startswith("2001-")


def test_a_total_past_the_column_is_stored_as_null_not_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = agentlog.Execution(agent="bot", input_tokens=1, output_tokens=2**31 - 1)
    assert record.total_tokens == 2**31
    wire = to_wire(record, agentlog.Config())
    assert (wire["input_tokens"], wire["output_tokens"], wire["total_tokens"]) == (
        1,
        2**31 - 1,
        None,
    )
    assert caplog.text.count("total_tokens=2147483648 is out of range; stored as NULL") == 1
    # A count given as text is one once normalized, and the total follows it.
    assert (
        to_wire(agentlog.Execution(agent="bot", input_tokens="5"), agentlog.Config())[  # type: ignore[arg-type]
            "total_tokens"
        ]
        == 5
    )
