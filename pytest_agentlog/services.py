"""The test's services and settings: the config a test runs with, its fresh database.

``build_config`` derives the test's ``Config`` from the application's;
``prepare_store`` gives the test a fresh (or migrated) database; the session
defaults are what the command line and ini file chose for the run.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from agentlog.config import Config
from agentlog.store import Store, get_store

from .modes import Mode, Resolved

MEMORY_DATABASE = "sqlite://"
# Config.redis_url only has to say "use rq"; the harness's factory hands out the fake client.
FAKE_REDIS_URL = "redis://agentlog-fakeredis:6379/0"
# Options the harness sets for every test (agentlog_config may change them):
# every enqueue reaches Redis (no circuit breaker pause between two calls, so
# ``times=`` counts enqueues) and rq retries a failed job at once.
HARNESS_OPTIONS: dict[str, Any] = {"breaker_cooldown": 1e-6}
# Options that belong to the plugin, not to agentlog_config.
PLUGIN_OWNED: dict[str, str] = {
    "mode": "--agentlog-mode, the agentlog_mode ini option or @pytest.mark.agentlog(mode=...)",
    "redis_url": "--agentlog-redis-url (a real Redis) or nothing (a fake Redis per test)",
}

_migrated: set[str] = set()


@dataclasses.dataclass(frozen=True)
class SessionDefaults:
    """What the command line and ini file chose for the whole run."""

    mode: Resolved = dataclasses.field(default_factory=lambda: Resolved("sync", "the default"))
    database_url: str | None = None
    redis_url: str | None = None


_sessions: list[SessionDefaults] = []


def push_session(defaults: SessionDefaults) -> None:
    _sessions.append(defaults)


def pop_session() -> None:
    if _sessions:
        _sessions.pop()


def session_defaults() -> SessionDefaults:
    return _sessions[-1] if _sessions else SessionDefaults()


def is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


_template: sqlite3.Connection | None = None
_template_lock = threading.Lock()


def _copy_schema_into(store: Store) -> None:
    """Give a fresh in-memory database the migrated schema by copying a template.

    Running the migrations takes ~25 ms; copying their result takes well under
    one. The store then finds its schema at the head revision, as if migrated.
    """
    global _template
    with _template_lock:
        if _template is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import StaticPool

            from agentlog.migrations import upgrade

            template = sqlite3.connect(":memory:", check_same_thread=False)
            engine = create_engine("sqlite://", creator=lambda: template, poolclass=StaticPool)
            upgrade(engine)
            _template = template
        raw = store.engine.raw_connection()
        try:
            _template.backup(raw.driver_connection)  # type: ignore[arg-type]
        finally:
            raw.close()


def build_config(
    app: Config,
    mode: Mode,
    *,
    database_url: str,
    redis_url: str,
    spool_dir: Path,
    queue_name: str,
    options: Mapping[str, Any],
) -> Config:
    """The test's ``Config``: the application's, with the test's services and ``options``."""
    known = {field.name for field in dataclasses.fields(Config)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"agentlog_config: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    for name, where in PLUGIN_OWNED.items():
        if name in options:
            raise TypeError(f"agentlog_config: {name!r} is set by the plugin; use {where}")
    test_options: dict[str, Any] = {
        "mode": "sync" if mode == "sync" else "async",
        "database_url": database_url,
        "redis_url": redis_url,
        "spool_dir": spool_dir,
        "queue_name": queue_name,
        "retry": dataclasses.replace(app.retry, wait=0.0),
        **HARNESS_OPTIONS,
    }
    return dataclasses.replace(app, **{**test_options, **options})


def prepare_store(database_url: str) -> Store:
    """The test's store, its schema in place: a copy of the migrated template for an
    in-memory SQLite database, the migrations (once per run) for a real one."""
    store = get_store(database_url)
    if is_memory_sqlite(database_url):
        _copy_schema_into(store)
    elif store.dialect != "sqlite" and database_url not in _migrated:
        from agentlog.migrations import upgrade

        upgrade(store.engine)
        _migrated.add(database_url)
    store.executions(limit=1)  # checks (or creates) the schema now, not in the test
    return store
