"""agentlog: log every LLM agent execution into your own SQL database, without slowing it down."""

from __future__ import annotations

from agentlog import jobs
from agentlog.config import Config, Retry, configure, get_config
from agentlog.counters import stats
from agentlog.execution import Execution
from agentlog.redaction import Redaction
from agentlog.runtime import flush, shutdown
from agentlog.store import get_store
from agentlog.tracking import agent, current_execution, log, track

__all__ = [
    "Config",
    "Execution",
    "Redaction",
    "Retry",
    "agent",
    "configure",
    "current_execution",
    "executions",
    "flush",
    "get_config",
    "jobs",
    "log",
    "shutdown",
    "stats",
    "track",
]

__version__ = "0.1.0"


def executions(
    *, agent: str | None = None, status: str | None = None, limit: int | None = None
) -> list[Execution]:
    """Stored executions from the configured database, newest first."""
    return get_store(get_config().database_url).executions(agent=agent, status=status, limit=limit)
