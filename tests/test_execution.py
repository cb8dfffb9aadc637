from __future__ import annotations

import time
import uuid
from datetime import timezone

import pytest

import agentlog
from agentlog.execution import new_id


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
