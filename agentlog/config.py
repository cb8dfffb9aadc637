"""Process-wide settings: ``configure()`` builds a frozen ``Config``."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agentlog.redaction import Redaction

Mode = Literal["sync", "async"]
MODES: tuple[str, ...] = ("sync", "async")
SUPPORTED_DIALECTS: tuple[str, ...] = ("sqlite", "postgresql")
REDIS_SCHEMES: tuple[str, ...] = ("redis://", "rediss://", "unix://")

ENV_MODE = "AGENTLOG_MODE"
ENV_DATABASE_URL = "AGENTLOG_DATABASE_URL"
ENV_REDIS_URL = "AGENTLOG_REDIS_URL"
ENV_QUEUE = "AGENTLOG_QUEUE"
ENV_SPOOL_DIR = "AGENTLOG_SPOOL_DIR"


@dataclass(frozen=True)
class Retry:
    """How often an rq job that failed is tried again.

    ``attempts`` counts every try, the first included (as ActiveJob's
    ``retry_on attempts:``), so ``attempts=3`` is rq's ``Retry(max=2)``.
    """

    attempts: int = 3
    wait: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"Retry.attempts must be at least 1, got {self.attempts!r}")
        if self.wait < 0:
            raise ValueError(f"Retry.wait must not be negative, got {self.wait!r}")


def _default_spool_dir() -> Path:
    env = os.environ.get(ENV_SPOOL_DIR)
    if env:
        return Path(env)
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(state_home) / "agentlog" / "spool"


@dataclass(frozen=True)
class Config:
    """Frozen settings. Build one with ``agentlog.configure(...)``."""

    mode: Mode = "async"
    database_url: str = "sqlite:///agentlog.db"
    redis_url: str | None = None
    queue_name: str = "llm_logging"
    persist_prompts: bool = True
    persist_responses: bool = True
    redaction: Redaction = field(default_factory=Redaction)
    # 500: a worker's throughput per row keeps rising up to here (rq costs ~5 ms
    # a job whatever its size); see docs/capacity.md. flush_interval bounds the wait.
    batch_size: int = 500
    flush_interval: float = 0.5
    buffer_size: int = 10_000
    retry: Retry = field(default_factory=Retry)
    spool_dir: Path = field(default_factory=_default_spool_dir)
    spool_max_bytes: int = 256 * 1024 * 1024
    compute_costs: bool = True
    redis_timeout: float = 0.2
    breaker_cooldown: float = 5.0
    job_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"agentlog: mode must be one of {', '.join(map(repr, MODES))}, got {self.mode!r}"
            )
        validate_database_url(self.database_url)
        if self.redis_url is not None and not self.redis_url.startswith(REDIS_SCHEMES):
            raise ValueError(
                f"agentlog: redis_url must start with {', '.join(REDIS_SCHEMES)}, "
                f"got {self.redis_url!r}"
            )
        if not self.queue_name:
            raise ValueError("agentlog: queue_name must not be empty")
        for name in ("batch_size", "buffer_size", "spool_max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"agentlog: {name} must be a positive integer, got {value!r}")
        for name in ("flush_interval", "redis_timeout", "breaker_cooldown", "job_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"agentlog: {name} must be a positive number, got {value!r}")
        if not isinstance(self.redaction, Redaction):
            raise TypeError(
                f"agentlog: redaction must be an agentlog.Redaction, got {type(self.redaction)!r}"
            )
        if not isinstance(self.retry, Retry):
            raise TypeError(f"agentlog: retry must be an agentlog.Retry, got {type(self.retry)!r}")
        object.__setattr__(self, "spool_dir", Path(self.spool_dir))


def validate_database_url(url: str) -> None:
    """Raise ``ValueError`` naming the problem unless ``url`` is a usable store URL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError) as exc:
        raise ValueError(
            f"agentlog: database_url {url!r} is not a database URL "
            "(try 'sqlite:///agentlog.db' or 'postgresql+psycopg://user:pass@host/db')"
        ) from exc
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise ValueError(
            f"agentlog: database_url {url!r} uses {parsed.get_backend_name()!r}; "
            f"supported: {', '.join(SUPPORTED_DIALECTS)}"
        )


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Config))
_lock = threading.Lock()
_current: Config | None = None
_listeners: list[Callable[[Config | None, Config], None]] = []


def _from_env() -> dict[str, Any]:
    env: dict[str, Any] = {}
    for option, var in (
        ("mode", ENV_MODE),
        ("database_url", ENV_DATABASE_URL),
        ("redis_url", ENV_REDIS_URL),
        ("queue_name", ENV_QUEUE),
    ):
        value = os.environ.get(var)
        if value:
            env[option] = value
    return env


def build_config(**options: Any) -> Config:
    """A ``Config`` from the defaults, the environment, then ``options``."""
    unknown = sorted(set(options) - _FIELD_NAMES)
    if unknown:
        raise TypeError(
            f"agentlog.configure() got unknown option(s): {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_FIELD_NAMES))}"
        )
    return Config(**{**_from_env(), **options})


def configure(**options: Any) -> Config:
    """Set the process-wide config. Options not passed come from env vars, then defaults."""
    return set_config(build_config(**options))


def set_config(config: Config) -> Config:
    global _current
    with _lock:
        previous, _current = _current, config
    for listener in list(_listeners):
        listener(previous, config)
    return config


def get_config() -> Config:
    """The current config; the defaults and environment until ``configure`` is called."""
    global _current
    config = _current
    if config is None:
        with _lock:
            if _current is None:
                _current = build_config()
            config = _current
    return config


def reset() -> None:
    """Forget the config: the next ``get_config()`` builds it from the environment again."""
    global _current
    with _lock:
        _current = None


def _new_lock_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def on_change(listener: Callable[[Config | None, Config], None]) -> None:
    """Call ``listener(previous, new)`` whenever the config is replaced."""
    _listeners.append(listener)
