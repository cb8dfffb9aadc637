"""The schema as Alembic migrations, kept in their own version table.

``agentlog migrate`` applies them; SQLite stores apply them on first use.
Applications that manage their own migrations can instead add
``agentlog.schema.metadata`` to theirs.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from agentlog.schema import VERSION_TABLE

HERE = Path(__file__).parent


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    script = ScriptDirectory(str(HERE))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when agentlog was never migrated there."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


# Alembic keeps its migration context in module globals: one upgrade at a time per process.
_upgrade_lock = threading.Lock()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (a no-op when it is there already)."""
    with _upgrade_lock:
        if revision == "head" and current_revision(engine) == head_revision():
            return
        command.upgrade(alembic_config(engine), revision)
