"""The plugin's modes and the one place that decides which applies to a test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pytest

Mode = Literal["sync", "async", "inline"]
MODES: tuple[Mode, ...] = ("sync", "async", "inline")
DEFAULT_MODE: Mode = "sync"

MARKER = "agentlog"
MARKER_KWARGS = frozenset({"mode", "allow_fallback"})
# Fixtures that force the mode of the test that requests them.
FORCING_FIXTURES: dict[str, Mode] = {"agentlog_sync": "sync", "agentlog_async": "async"}


def check_mode(value: object, source: str) -> Mode:
    """``value`` as a mode, or a ``pytest.UsageError`` that names ``source`` and the choices."""
    if value not in MODES:
        raise pytest.UsageError(
            f"agentlog: invalid mode {value!r} from {source}; choose one of: {', '.join(MODES)}"
        )
    return value


@dataclass(frozen=True)
class Resolved:
    """The mode a test runs in, and what decided it (for messages)."""

    mode: Mode
    source: str


def resolve_mode(
    *,
    forced: str | None = None,
    marker: str | None = None,
    option: str | None = None,
    ini: str | None = None,
) -> Resolved:
    """Precedence: a forcing fixture > the marker > the CLI option > the ini value > the default."""
    for value, source in (
        (forced, "a mode fixture (agentlog_sync / agentlog_async)"),
        (marker, "@pytest.mark.agentlog(mode=...)"),
        (option, "--agentlog-mode"),
        (ini, "the agentlog_mode ini option"),
    ):
        if value:
            return Resolved(check_mode(value, source), source)
    return Resolved(DEFAULT_MODE, "the default")


def session_mode(config: pytest.Config) -> Resolved:
    """The mode of tests without a marker: CLI, then ini, then the default."""
    option = config.getoption("agentlog_mode", default=None)
    ini = config.getini("agentlog_mode") or None
    return resolve_mode(option=option, ini=ini)


def marker_kwargs(node: pytest.Item) -> dict[str, Any]:
    """The ``agentlog`` markers' options, checked; for each option the closest marker wins
    (a function's ``allow_fallback=True`` keeps the module's ``mode``)."""
    kwargs: dict[str, Any] = {}
    for mark in node.iter_markers(MARKER):
        where = f"@pytest.mark.agentlog on {node.nodeid}"
        if mark.args:
            raise pytest.UsageError(
                f"agentlog: {where} takes keyword arguments only "
                f"(mode=..., allow_fallback=...), got {mark.args!r}"
            )
        unknown = sorted(set(mark.kwargs) - MARKER_KWARGS)
        if unknown:
            raise pytest.UsageError(
                f"agentlog: {where} got unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(MARKER_KWARGS))}"
            )
        if "mode" in mark.kwargs:
            check_mode(mark.kwargs["mode"], where)
        if not isinstance(mark.kwargs.get("allow_fallback", False), bool):
            raise pytest.UsageError(
                f"agentlog: {where}: allow_fallback must be True or False, "
                f"got {mark.kwargs['allow_fallback']!r}"
            )
        for name, value in mark.kwargs.items():
            kwargs.setdefault(name, value)
    return kwargs


def forced_mode(fixturenames: list[str], nodeid: str) -> Mode | None:
    """The mode a requested ``agentlog_sync`` / ``agentlog_async`` fixture forces, if any."""
    forced = {FORCING_FIXTURES[name] for name in fixturenames if name in FORCING_FIXTURES}
    if len(forced) > 1:
        raise pytest.UsageError(
            f"agentlog: {nodeid} requests both agentlog_sync and agentlog_async; "
            "a test runs in one mode (parametrize the test to run it in several)"
        )
    return forced.pop() if forced else None
