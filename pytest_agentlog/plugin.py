"""pytest hooks and fixtures of pytest_agentlog (loaded through the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentlog.config import REDIS_SCHEMES, validate_database_url

from .clock import AgentlogClock
from .modes import MARKER, MODES, forced_mode, marker_kwargs, resolve_mode, session_mode
from .outage import AgentlogOutage
from .queue import AgentlogQueue
from .services import SessionDefaults, pop_session, push_session, session_defaults
from .testbed import Harness

_pushed = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentlog", "agentlog: testing the logging of LLM agent executions")
    choices = ",".join(MODES)
    group.addoption(
        "--agentlog-mode",
        dest="agentlog_mode",
        default=None,
        metavar=f"{{{choices}}}",
        help=(
            "mode every test runs agentlog in: sync (written on the caller's thread), async "
            "(jobs wait in a per-test fake Redis until drained), inline (jobs performed at once "
            "by a real rq worker). Default: the agentlog_mode ini option, else sync."
        ),
    )
    group.addoption(
        "--agentlog-database-url",
        dest="agentlog_database_url",
        default=None,
        metavar="URL",
        help="a real database for the tests (default: a fresh in-memory SQLite per test).",
    )
    group.addoption(
        "--agentlog-redis-url",
        dest="agentlog_redis_url",
        default=None,
        metavar="URL",
        help="a real Redis for the tests, one queue per test (default: a fake Redis per test).",
    )
    parser.addini("agentlog_mode", f"agentlog: default mode ({choices}); --agentlog-mode wins.")
    parser.addini("agentlog_database_url", "agentlog: a real database for the tests.")
    parser.addini("agentlog_redis_url", "agentlog: a real Redis for the tests.")


def _url(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name, default=None) or config.getini(name) or None
    return str(value) if value is not None else None


def _session_defaults(config: pytest.Config) -> SessionDefaults:
    database_url = _url(config, "agentlog_database_url")
    redis_url = _url(config, "agentlog_redis_url")
    if database_url is not None:
        try:
            validate_database_url(database_url)
        except ValueError as exc:
            raise pytest.UsageError(
                f"--agentlog-database-url / agentlog_database_url: {exc}"
            ) from exc
    if redis_url is not None and not redis_url.startswith(REDIS_SCHEMES):
        raise pytest.UsageError(
            f"--agentlog-redis-url / agentlog_redis_url: {redis_url!r} must start with "
            f"{', '.join(REDIS_SCHEMES)}"
        )
    return SessionDefaults(session_mode(config), database_url, redis_url)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(mode=None, allow_fallback=False): run this test's agentlog in mode "
        f"({', '.join(MODES)}) and/or allow the queue to fall back to synchronous writes.",
    )
    push_session(_session_defaults(config))
    config.stash[_pushed] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_pushed, False):
        pop_session()
        config.stash[_pushed] = False


def pytest_report_header(config: pytest.Config) -> str:
    defaults = session_defaults()
    database = defaults.database_url or "in-memory SQLite per test"
    redis = defaults.redis_url or "fakeredis per test"
    return (
        f"agentlog: mode={defaults.mode.mode} ({defaults.mode.source}), "
        f"database={database}, redis={redis}"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Check every ``agentlog`` marker now (a bad mode is a usage error, not 1 error per test),
    and give marked tests the harness even when they request no fixture of ours."""
    for item in items:
        if item.get_closest_marker(MARKER) is None:
            continue
        marker_kwargs(item)
        names = getattr(item, "fixturenames", None)
        if isinstance(names, list) and "agentlog" not in names:
            names.append("agentlog")


@pytest.fixture
def agentlog_config() -> dict[str, Any]:
    """Extra ``agentlog.Config`` options for the test; override this fixture to change them.

    They apply on top of the application's own config (``agentlog.configure()``)
    and the plugin's test settings, e.g. ``{"redaction": Redaction(keys=...),
    "persist_prompts": False}``. ``mode`` and ``redis_url`` belong to the plugin.
    """
    return {}


@pytest.fixture
def agentlog(
    request: pytest.FixtureRequest,
    agentlog_config: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Harness]:
    """The per-test harness: fresh database and fake Redis, the library configured for the mode.

    ``.mode``, ``.executions()`` (stored rows, after draining), ``.flush()``.
    """
    defaults = session_defaults()
    options = marker_kwargs(request.node) if isinstance(request.node, pytest.Item) else {}
    resolved = resolve_mode(
        forced=forced_mode(list(request.fixturenames), request.node.nodeid),
        marker=options.get("mode"),
        option=request.config.getoption("agentlog_mode", default=None),
        ini=request.config.getini("agentlog_mode") or None,
    )
    harness = Harness(
        resolved.mode,
        spool_dir=tmp_path_factory.mktemp("agentlog-spool"),
        options=agentlog_config,
        allow_fallback=bool(options.get("allow_fallback", False)),
        outage_requested="agentlog_outage" in request.fixturenames,
        database_url=defaults.database_url,
        redis_url=defaults.redis_url,
        mode_source=resolved.source,
    ).start()
    yield harness
    problems = harness.stop()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def agentlog_sync(agentlog: Harness) -> Harness:
    """The harness in ``sync`` mode, whatever the marker, option or ini file say."""
    return agentlog


@pytest.fixture
def agentlog_async(agentlog: Harness) -> Harness:
    """The harness in ``async`` mode: jobs wait in the fake queue until drained."""
    return agentlog


@pytest.fixture
def agentlog_queue(agentlog: Harness) -> AgentlogQueue:
    """What crossed the queue in this test, read back from Redis; ``.drain()`` performs it."""
    return agentlog.queue


@pytest.fixture
def agentlog_outage(agentlog: Harness) -> Iterator[AgentlogOutage]:
    """Simulated queue and database failures; requesting it allows fallbacks in the test."""
    yield agentlog.outage
    agentlog.outage.restore()


@pytest.fixture
def agentlog_clock(agentlog: Harness) -> Iterator[AgentlogClock]:
    """Frozen time (freezegun) that agentlog's timestamps and durations follow; ``.tick(s)``."""
    with AgentlogClock() as clock:
        yield clock
