from __future__ import annotations

import asyncio
import logging
import threading

import pytest

import agentlog


@pytest.fixture
def sync_db(database_url: str) -> str:
    agentlog.configure(mode="sync", database_url=database_url)
    return database_url


def test_success_is_stored_with_timing(sync_db: str) -> None:
    with agentlog.track("support-bot", model="gpt-4o", tenant_id="acme") as run:
        run.prompt = "hi"
        run.response = {"text": "hello"}
    [stored] = agentlog.executions()
    assert stored.id == run.id
    assert stored.status == "success"
    assert stored.agent == "support-bot" and stored.tenant_id == "acme"
    assert stored.prompt == "hi" and stored.response == {"text": "hello"}
    assert stored.started_at is not None and stored.completed_at is not None
    assert stored.completed_at >= stored.started_at
    assert stored.duration_ms is not None and stored.duration_ms >= 0
    assert stored.trace_id == str(run.id)


def test_error_is_recorded_and_reraised_untouched(sync_db: str) -> None:
    error = KeyError("missing")
    with pytest.raises(KeyError) as info, agentlog.track("bot"):
        raise error
    assert info.value is error
    assert info.traceback[-1].name == "test_error_is_recorded_and_reraised_untouched"
    [stored] = agentlog.executions()
    assert stored.status == "error"
    assert stored.error_class == "KeyError"
    assert stored.error_message == "'missing'"


@pytest.mark.parametrize("exc", [TimeoutError("slow"), asyncio.TimeoutError()])
def test_timeouts(sync_db: str, exc: BaseException) -> None:
    with pytest.raises(type(exc)), agentlog.track("bot"):
        raise exc
    assert agentlog.executions()[0].status == "timeout"


def test_error_message_is_redacted_and_truncated(sync_db: str) -> None:
    key = "sk-proj-" + "A1b2C3d4" * 6
    with pytest.raises(RuntimeError), agentlog.track("bot"):
        raise RuntimeError(f"auth failed for {key} " + "x" * 50_000)
    [stored] = agentlog.executions()
    assert key not in (stored.error_message or "")
    assert "[REDACTED]" in (stored.error_message or "")
    assert len(stored.error_message or "") <= agentlog.get_config().redaction.max_value_length
    assert stored.error_class == "RuntimeError"


def test_async_with(sync_db: str) -> None:
    async def main() -> None:
        async with agentlog.track("async-bot") as run:
            await asyncio.sleep(0)
            run.response = "done"

    asyncio.run(main())
    assert agentlog.executions()[0].response == "done"


def test_nested_tracks_record_parent_and_trace(sync_db: str) -> None:
    with (
        agentlog.track("planner") as parent,
        agentlog.track("tool") as child,
        agentlog.track("subtool") as grandchild,
    ):
        pass
    assert child.parent_id == parent.id
    assert grandchild.parent_id == child.id
    stored = {e.agent: e for e in agentlog.executions()}
    assert stored["subtool"].trace_id == stored["tool"].trace_id == str(parent.id)
    assert stored["planner"].parent_id is None


def test_parents_follow_asyncio_tasks_not_siblings(sync_db: str) -> None:
    async def child(name: str) -> None:
        async with agentlog.track(name):
            await asyncio.sleep(0.001)

    async def main() -> agentlog.Execution:
        async with agentlog.track("root") as root:
            await asyncio.gather(child("a"), child("b"))
        return root

    root = asyncio.run(main())
    stored = {e.agent: e for e in agentlog.executions()}
    assert stored["a"].parent_id == root.id
    assert stored["b"].parent_id == root.id


def test_threads_do_not_share_a_parent(sync_db: str) -> None:
    seen: dict[str, object] = {}

    def worker() -> None:
        with agentlog.track("in-thread") as run:
            seen["parent"] = run.parent_id

    with agentlog.track("outer"):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert seen["parent"] is None


def test_decorator_records_arguments_and_return(sync_db: str) -> None:
    @agentlog.agent("summarizer", model="gpt-4o-mini")
    def summarize(text: str, *, words: int = 10) -> str:
        return text[:words]

    assert summarize("hello world", words=5) == "hello"
    [stored] = agentlog.executions()
    assert stored.agent == "summarizer" and stored.model == "gpt-4o-mini"
    assert stored.parameters == {"text": "hello world", "words": 5}
    assert stored.response == "hello"


def test_bare_decorator_uses_the_qualified_name(sync_db: str) -> None:
    @agentlog.agent
    def classify(label: str) -> str:
        return label

    classify("x")
    assert agentlog.executions()[0].agent.endswith("classify")


def test_decorator_on_async_function_and_method(sync_db: str) -> None:
    class Bot:
        @agentlog.agent(model="gpt-4o")
        async def answer(self, question: str) -> str:
            await asyncio.sleep(0)
            return question.upper()

        @agentlog.agent("failing")
        def fail(self) -> None:
            raise ValueError("nope")

    assert asyncio.run(Bot().answer("why")) == "WHY"
    with pytest.raises(ValueError, match="nope"):
        Bot().fail()
    stored = {e.agent: e for e in agentlog.executions()}
    assert stored["test_decorator_on_async_function_and_method.<locals>.Bot.answer"].parameters == {
        "question": "why"
    }
    assert stored["failing"].status == "error"


def test_log_a_finished_execution_or_a_dict(sync_db: str) -> None:
    record = agentlog.log({"agent": "batch-job", "model": "gpt-4o", "input_tokens": 3})
    agentlog.log(agentlog.Execution(agent="manual", status="error", error_class="X"))
    stored = {e.agent: e for e in agentlog.executions()}
    assert stored["batch-job"].id == record.id
    assert stored["batch-job"].status == "success"
    assert stored["manual"].status == "error"
    with pytest.raises(TypeError, match="Execution or a dict"):
        agentlog.log("nope")  # type: ignore[arg-type]


def test_unknown_track_fields_go_to_metadata(
    sync_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    with agentlog.track("bot", customer_tier="gold", metadata={"a": 1}):
        pass
    assert agentlog.executions()[0].metadata == {"a": 1, "customer_tier": "gold"}
    assert "customer_tier" in caplog.text


def test_persist_flags_drop_prompts_and_responses(database_url: str) -> None:
    agentlog.configure(
        mode="sync", database_url=database_url, persist_prompts=False, persist_responses=False
    )
    with agentlog.track("bot") as run:
        run.system_prompt = "you are"
        run.prompt = "q"
        run.response = "a"
        run.parameters = {"temperature": 0.2}
    [stored] = agentlog.executions()
    assert (stored.system_prompt, stored.prompt, stored.response) == (None, None, None)
    assert stored.parameters == {"temperature": 0.2}


def test_secrets_are_redacted_in_every_json_field(sync_db: str) -> None:
    token = "ghp_" + "a" * 36
    with agentlog.track("bot", metadata={"authorization": "Bearer abc.def"}) as run:
        run.parameters = {"api_key": "plain", "max_tokens": 5}
        run.prompt = [{"role": "user", "content": f"my token is {token}"}]
        run.tool_calls = [{"name": "http", "args": {"headers": {"X-Api-Key": "k"}}}]
        run.response = {"echo": token}
        run.system_prompt = f"use {token}"
    [stored] = agentlog.executions()
    text = repr(stored)
    assert token not in text and "plain" not in text and "abc.def" not in text
    assert stored.parameters == {"api_key": "[REDACTED]", "max_tokens": 5}
    assert stored.tool_calls == [{"name": "http", "args": {"headers": {"X-Api-Key": "[REDACTED]"}}}]


def test_caller_objects_are_not_mutated(sync_db: str) -> None:
    params = {"api_key": "secret-value", "nested": {"password": "p"}}
    with agentlog.track("bot") as run:
        run.parameters = params
    assert params == {"api_key": "secret-value", "nested": {"password": "p"}}
    # The record keeps its own copy of what was passed with ** (track() adopts its kwargs).
    fields = {"tenant_id": "acme", "metadata": None}
    with agentlog.track("bot", **fields) as run:
        run.metadata["step"] = 1
    assert fields == {"tenant_id": "acme", "metadata": None}
    assert (run.agent, run.tenant_id, run.metadata) == ("bot", "acme", {"step": 1})


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = {"level": value}
    return value


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(object(), id="object"),
        pytest.param(Unprintable(), id="raising-repr"),
        pytest.param("x" * 10_000_000, id="10MB-string"),
        pytest.param(float("nan"), id="nan"),
        pytest.param("\ud800 surrogate \x00 nul", id="surrogate-nul"),
        pytest.param(_nested(5_000), id="deep-nesting"),
        pytest.param({1, 2, 3}, id="set"),
        pytest.param(b"\xff\xfe bytes", id="bytes"),
        pytest.param(2**80, id="huge-int"),
    ],
)
def test_bad_input_never_raises_and_never_blocks_other_records(sync_db: str, bad: object) -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with agentlog.track("bad") as run:
        run.parameters = {"value": bad, "cycle": cycle}
        run.response = bad
        run.metadata = {"bad": bad}
        run.input_tokens = "many"  # type: ignore[assignment]
        run.duration_ms = float("nan")
    with agentlog.track("good"):
        pass
    stored = {e.agent: e for e in agentlog.executions()}
    assert set(stored) == {"bad", "good"}
    assert stored["bad"].input_tokens is None
    assert agentlog.stats()["dropped"] == 0


def test_agentlog_errors_never_reach_the_caller(
    sync_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from agentlog import runtime

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug inside agentlog")

    monkeypatch.setattr(runtime, "to_wire", broken)
    with caplog.at_level(logging.ERROR, logger="agentlog"), agentlog.track("bot"):
        result = 42
    assert result == 42
    assert "bug inside agentlog" in caplog.text
    assert agentlog.stats()["errors"] == 1


# -- the constructor, as the C twin (agentlog._speedups) and the Python twin take it --


def test_track_takes_its_arguments_in_every_spelling(sync_db: str) -> None:
    # Keyword names made at run time are not interned: the C twin compares them by value.
    model, metadata, tenant = (
        "".join(parts) for parts in (["mo", "del"], ["meta", "data"], ["tenant", "_id"])
    )
    with agentlog.track(agent="by-keyword"):
        pass
    with agentlog.track("spread", **{model: "gpt-4o", tenant: "acme", metadata: None}):
        pass
    with agentlog.track("spread-unknown", **{"".join(["col", "our"]): "red"}):
        pass
    stored = {e.agent: e for e in agentlog.executions()}
    assert set(stored) == {"by-keyword", "spread", "spread-unknown"}
    assert (stored["spread"].model, stored["spread"].tenant_id) == ("gpt-4o", "acme")
    assert stored["spread"].metadata == {}
    assert stored["by-keyword"].model is None
    assert stored["spread-unknown"].metadata == {"colour": "red"}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "agent"),
        (("a", "b"), {}, "positional"),
        (("a",), {"agent": "b"}, "multiple values"),
    ],
)
def test_a_wrong_call_raises_type_error_as_a_function_would(
    args: tuple[str, ...], kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        agentlog.track(*args, **kwargs)  # type: ignore[misc]


def test_the_callers_keyword_dict_is_neither_kept_nor_changed(sync_db: str) -> None:
    fields = {"tenant_id": "acme", "metadata": None}
    with agentlog.track("bot", **fields) as run:  # type: ignore[arg-type]
        fields["tenant_id"] = "changed later"
    assert fields == {"tenant_id": "changed later", "metadata": None}
    assert run.tenant_id == "acme" and run.metadata == {}
    assert agentlog.executions()[0].tenant_id == "acme"


def test_exit_without_enter_is_counted_not_raised(
    sync_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = agentlog.track("never-entered")
    with caplog.at_level(logging.ERROR, logger="agentlog"):
        tracker.__exit__(None, None, None)
    assert agentlog.stats()["errors"] == 1
    assert "never-entered" in caplog.text


def test_a_subclass_of_track_records_the_same(sync_db: str) -> None:
    class Traced(agentlog.track):
        pass

    with Traced("sub", model="gpt-4o", tenant_id="acme") as run:
        run.usage(input_tokens=3, output_tokens=4)
    [stored] = agentlog.executions()
    assert (stored.agent, stored.model, stored.tenant_id) == ("sub", "gpt-4o", "acme")
    assert (stored.status, stored.total_tokens) == ("success", 7)
