from __future__ import annotations

import dataclasses

import pytest

import agentlog
from agentlog.config import get_config
from agentlog.store import get_store


def test_defaults() -> None:
    config = agentlog.configure()
    assert config.mode == "async"
    assert config.database_url == "sqlite:///agentlog.db"
    assert config.redis_url is None
    assert config.queue_name == "llm_logging"
    assert config.persist_prompts is True
    assert config.persist_responses is True
    assert config.retry == agentlog.Retry(attempts=3, wait=5.0)
    assert isinstance(config.redaction, agentlog.Redaction)
    assert get_config() is config


def test_config_is_frozen() -> None:
    config = agentlog.configure(mode="sync")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mode = "async"  # type: ignore[misc]


def test_unknown_option_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="databse_url"):
        agentlog.configure(databse_url="sqlite://")


def test_bad_mode_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="'sync', 'async'") as info:
        agentlog.configure(mode="fast")
    assert "'fast'" in str(info.value)


@pytest.mark.parametrize("url", ["not a url", "http//x", ""])
def test_unparsable_database_url_fails_at_configure(url: str) -> None:
    with pytest.raises(ValueError, match="database_url"):
        agentlog.configure(database_url=url)


def test_unsupported_database_fails_at_configure() -> None:
    with pytest.raises(ValueError, match="'mysql'"):
        agentlog.configure(database_url="mysql://u@localhost/db")


def test_bad_redis_url() -> None:
    with pytest.raises(ValueError, match="redis_url"):
        agentlog.configure(redis_url="localhost:6379")


@pytest.mark.parametrize(
    ("option", "value"),
    [("batch_size", 0), ("buffer_size", -1), ("flush_interval", 0), ("redis_timeout", -1.0)],
)
def test_bad_numbers_are_named(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        agentlog.configure(**{option: value})


def test_retry_validation() -> None:
    with pytest.raises(ValueError, match="attempts"):
        agentlog.Retry(attempts=0)


def test_env_vars_fill_what_is_not_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLOG_MODE", "sync")
    monkeypatch.setenv("AGENTLOG_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("AGENTLOG_REDIS_URL", "redis://localhost:6379/3")
    monkeypatch.setenv("AGENTLOG_QUEUE", "agents")
    config = agentlog.configure(queue_name="explicit")
    assert config.mode == "sync"
    assert config.database_url == "sqlite:///from-env.db"
    assert config.redis_url == "redis://localhost:6379/3"
    assert config.queue_name == "explicit"


def test_bad_env_mode_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLOG_MODE", "later")
    with pytest.raises(ValueError, match="'later'"):
        agentlog.configure()


def test_reconfigure_takes_effect_for_the_next_record(tmp_path: object) -> None:
    first = f"sqlite:///{tmp_path}/first.db"
    second = f"sqlite:///{tmp_path}/second.db"
    agentlog.configure(mode="sync", database_url=first)
    with agentlog.track("one"):
        pass
    agentlog.configure(mode="sync", database_url=second)
    with agentlog.track("two"):
        pass
    assert [e.agent for e in get_store(first).executions()] == ["one"]
    assert [e.agent for e in agentlog.executions()] == ["two"]
