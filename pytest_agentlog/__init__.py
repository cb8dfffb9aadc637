"""pytest_agentlog: test the logging of LLM agent executions with agentlog.

The plugin (hooks and fixtures) is ``pytest_agentlog.plugin``, loaded through
the ``pytest11`` entry point ``agentlog``. With ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``
set, load it with ``-p pytest_agentlog`` (or ``-p agentlog``).

The names below are imported on first use, so that importing this package (as
hypothesis' entry point does) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

# Before the helpers are imported: their ``assert`` statements get pytest's messages.
pytest.register_assert_rewrite("pytest_agentlog.assertions")

# ``-p pytest_agentlog`` registers this package as a plugin; it brings in the real one
# under its entry point name, so that autoloading it as well does not load it twice.
pytest_plugins = ["agentlog"]

if TYPE_CHECKING:
    from . import strategies
    from .assertions import assert_enqueued, assert_fell_back, assert_logged, assert_not_logged
    from .clock import AgentlogClock
    from .outage import AgentlogOutage, Fallback, Outage
    from .queue import AgentlogQueue, QueuedJob
    from .testbed import Harness, harness

__all__ = [
    "AgentlogClock",
    "AgentlogOutage",
    "AgentlogQueue",
    "Fallback",
    "Harness",
    "Outage",
    "QueuedJob",
    "assert_enqueued",
    "assert_fell_back",
    "assert_logged",
    "assert_not_logged",
    "harness",
    "strategies",
]

_WHERE = {
    "assert_enqueued": "assertions",
    "assert_fell_back": "assertions",
    "assert_logged": "assertions",
    "assert_not_logged": "assertions",
    "AgentlogClock": "clock",
    "Harness": "testbed",
    "harness": "testbed",
    "AgentlogOutage": "outage",
    "Fallback": "outage",
    "Outage": "outage",
    "AgentlogQueue": "queue",
    "QueuedJob": "queue",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "strategies":  # the submodule, as ``pytest_agentlog.strategies.executions()``
        return importlib.import_module("pytest_agentlog.strategies")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_agentlog' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pytest_agentlog.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
