"""The per-test harness: the library configured for a mode, on a fresh database and fake Redis.

``Harness.start()`` saves the application's config, resets the library to a
freshly imported state and configures it for the test (the application's
settings, such as redaction, kept; the database, Redis and spool swapped for
the test's). ``Harness.stop()`` puts everything back. One harness is active
at a time; the assertion helpers find it through ``active()``.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fakeredis
import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry

import agentlog
from agentlog import config as config_module
from agentlog import runtime
from agentlog.config import Config
from agentlog.execution import Execution
from agentlog.serialize import Wire
from agentlog.spool import get_spool
from agentlog.store import Store, get_store
from agentlog.transport import connect_redis, make_queue

from .modes import MODES, Mode, Resolved, check_mode
from .outage import AgentlogOutage, Fallback, Gate, install_database_gate, install_queue_gate
from .queue import AgentlogQueue
from .services import (
    FAKE_REDIS_URL,
    MEMORY_DATABASE,
    build_config,
    is_memory_sqlite,
    prepare_store,
    session_defaults,
)

_current: Harness | None = None
_lock = threading.Lock()


def active() -> Harness:
    """The harness of the running test, or a ``RuntimeError`` saying how to get one."""
    current = _current
    if current is None:
        raise RuntimeError(
            "agentlog: no agentlog test harness is active. Request the `agentlog` fixture "
            "(or agentlog_sync / agentlog_async / agentlog_queue / agentlog_outage), mark the "
            "test with @pytest.mark.agentlog, or wrap the code in "
            "`with pytest_agentlog.harness():` (inside @given)."
        )
    return current


def current() -> Harness | None:
    return _current


class _LogRecorder(logging.Handler):
    """Keeps agentlog's warnings and errors of this test, for failure messages."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(f"{record.levelname}: {record.getMessage()}")
        except Exception:  # a log call with bad arguments must not break the test
            self.messages.append(f"{record.levelname}: {record.msg!r}")


class Harness:
    """The ``agentlog`` fixture: the library, configured for one test and one mode.

    ``mode`` is ``"sync"`` (written on the caller's thread), ``"async"`` (jobs
    wait in the test's fake Redis until drained) or ``"inline"`` (jobs are
    performed at once by a real rq worker in the test's thread).
    """

    def __init__(
        self,
        mode: str = "sync",
        *,
        spool_dir: Path,
        options: Mapping[str, Any] | None = None,
        allow_fallback: bool = False,
        outage_requested: bool = False,
        database_url: str | None = None,
        redis_url: str | None = None,
        mode_source: str = "the harness",
    ) -> None:
        self.mode: Mode = check_mode(mode, mode_source)
        self.mode_source = mode_source
        self.allow_fallback = allow_fallback
        self.outage_requested = outage_requested
        self.database_url = database_url or MEMORY_DATABASE
        self.real_redis_url = redis_url
        self.spool_dir = Path(spool_dir)
        self._options = dict(options or {})
        self.fallbacks: list[Fallback] = []
        self._acknowledged = 0
        self._ids: set[uuid.UUID] = set()
        self._scoped = not is_memory_sqlite(self.database_url)
        self.queue_gate = Gate("queue")
        self.database_gate = Gate("database")
        self.outage = AgentlogOutage(self.queue_gate, self.database_gate, self.fallbacks)
        self._log = _LogRecorder()
        self._saved: Config | None = None
        self._started = False
        self.server: fakeredis.FakeServer | None = None
        self.redis: redis.Redis
        self.queue: AgentlogQueue
        self.config: Config

    def __repr__(self) -> str:
        return f"<agentlog harness mode={self.mode!r} database={self.database_url!r}>"

    def __getattr__(self, name: str) -> Any:
        # The fixture is called ``agentlog`` like the library, so inside a test it hides
        # the module: ``agentlog.track(...)`` and the other public names still work.
        if name in agentlog.__all__:
            return getattr(agentlog, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- lifecycle --------------------------------------------------------

    def start(self) -> Harness:
        global _current
        with _lock:
            if _current is not None:
                raise RuntimeError(
                    "agentlog: a test harness is already active in this test (the `agentlog` "
                    "fixture or an enclosing pytest_agentlog.harness()); one library "
                    "configuration is live at a time. Use either the fixture or harness() "
                    "(inside @given, use harness() and do not request the fixture)."
                )
            _current = self
        try:
            self._start()
        except BaseException:
            try:
                self._restore()
            finally:
                with _lock:
                    _current = None
            raise
        return self

    def _start(self) -> None:
        self._saved = config_module._current
        app = self._saved if self._saved is not None else config_module.build_config()
        runtime.reset_process_state()
        self._started = True
        queue_name = app.queue_name
        if self.real_redis_url is not None:
            # A real Redis is shared (xdist workers, other runs): a queue of this test's own.
            queue_name = f"{app.queue_name}.pytest.{uuid.uuid4().hex[:12]}"
        self.config = build_config(
            app,
            self.mode,
            database_url=self.database_url,
            redis_url=self.real_redis_url or FAKE_REDIS_URL,
            spool_dir=self.spool_dir,
            queue_name=queue_name,
            options=self._options,
        )
        self.database_url = self.config.database_url
        self._scoped = not is_memory_sqlite(self.database_url)
        if self.real_redis_url is not None:
            self.redis = redis.Redis.from_url(self.real_redis_url)
        else:
            self.server = fakeredis.FakeServer()
            self.redis = fakeredis.FakeRedis(server=self.server)
        self.queue = AgentlogQueue(make_queue(self.config, self.redis), self.redis, self.mode)

        settings = runtime.settings
        settings.redis_factory = self._redis_factory
        settings.eager = True
        settings.on_fallback.append(self._on_fallback)
        settings.on_enqueued.append(self.queue.capture)
        if self.mode == "inline":
            settings.on_enqueued.append(self.queue.run_inline)
        config_module.set_config(self.config)

        store = prepare_store(self.database_url)
        install_database_gate(store.engine, self.database_gate)
        if self._scoped:
            self._track_ids(store)
        logging.getLogger("agentlog").addHandler(self._log)

    def _redis_factory(self, config: Config) -> redis.Redis:
        if self.real_redis_url is not None:
            client = connect_redis(config)
        else:
            client = fakeredis.FakeRedis(server=self.server, retry=RedisRetry(NoBackoff(), 0))
        return install_queue_gate(client, self.queue_gate)

    def _track_ids(self, store: Store) -> None:
        """Note the id of every record written to a shared database in this test, so that
        reads show this test's rows only. Every path (sync, fallback, job, spool replay)
        writes through ``Store.insert_many``; the store is this test's own object."""
        insert_many = store.insert_many

        def tracked(records: Iterable[Wire]) -> int:
            records = list(records)
            for record in records:
                # A bad id: the store drops the record and says why.
                if isinstance(record, Mapping) and record.get("id") is not None:
                    with contextlib.suppress(ValueError):
                        self._ids.add(uuid.UUID(str(record["id"])))
            return insert_many(records)

        setattr(store, "insert_many", tracked)  # noqa: B010 - an instance attribute

    def _on_fallback(self, reason: str, executions: int) -> None:
        self.fallbacks.append(Fallback(reason, executions))

    def stop(self) -> list[str]:
        """Restore the application's state; returns what went wrong unseen (strict checks)."""
        global _current
        problems: list[str] = []
        try:
            if self._started:
                problems = self._problems()
        finally:
            try:
                self._restore()
            finally:
                with _lock:
                    if _current is self:
                        _current = None
        return problems

    def _restore(self) -> None:
        self.queue_gate.restore_all()
        self.database_gate.restore_all()
        logging.getLogger("agentlog").removeHandler(self._log)
        if not self._started:
            return
        if self.real_redis_url is not None and hasattr(self, "queue"):
            self._delete_test_queue()
        runtime.reset_process_state()
        with config_module._lock:
            config_module._current = self._saved

    def _delete_test_queue(self) -> None:
        name = self.config.queue_name
        try:
            self.queue.queue.delete(delete_jobs=True)
            for key in self.redis.scan_iter(match=f"rq:*{name}*"):
                self.redis.delete(key)
        except redis.RedisError:
            pass
        finally:
            self.redis.close()

    # -- strict checks ----------------------------------------------------

    def _problems(self) -> list[str]:
        problems = []
        unseen = self.queue.unseen_errors
        if unseen:
            listed = "\n".join(f"  job {e.job_id}: {e.error!r}" for e in unseen)
            problems.append(
                f"agentlog: {len(unseen)} rq job(s) failed in this test and nobody looked:\n"
                f"{listed}\n"
                "try: assert on them with agentlog_queue.failed, or call agentlog.flush() / "
                "pytest_agentlog.assert_logged() to have the error raised in the test"
            )
        if self.allow_fallback or self.outage_requested:
            return problems
        unexpected = self.fallbacks[self._acknowledged :]
        if unexpected:
            listed = "\n".join(f"  {f.executions} execution(s): {f.reason}" for f in unexpected)
            problems.append(
                f"agentlog: the queue failed and the library fell back to writing "
                f"synchronously {len(unexpected)} time(s), which this test did not expect:\n"
                f"{listed}\n"
                "A broken queue must not hide behind a silent fallback. If the test breaks "
                "the queue on purpose, use the agentlog_outage fixture or "
                "pytest_agentlog.assert_fell_back(); else allow it with "
                "@pytest.mark.agentlog(allow_fallback=True)."
            )
        stats = agentlog.stats()
        for counter, what in (
            ("spooled", "were spooled to disk (the database write failed)"),
            ("dropped", "were dropped (neither the database nor the spool took them)"),
        ):
            if stats.get(counter):
                problems.append(
                    f"agentlog: {stats[counter]} execution(s) {what} in this test, "
                    "which it did not expect.\n"
                    + self._log_tail()
                    + "If the test breaks the database on purpose, use the agentlog_outage "
                    "fixture; else allow it with @pytest.mark.agentlog(allow_fallback=True)."
                )
        return problems

    def acknowledge_fallbacks(self) -> None:
        """The test looked at the fallbacks so far (``assert_fell_back``): they are expected."""
        self._acknowledged = len(self.fallbacks)

    # -- the fixture's API ------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Hand on everything pending; in ``async`` and ``inline`` mode, perform waiting jobs.

        Returns what ``agentlog.flush()`` returns (True: everything was handed
        on). A job's error is raised here.
        """
        __tracebackhide__ = True
        done = runtime.flush(timeout)
        if self.mode != "sync":
            self.queue.drain()
        return done

    def executions(
        self, *, agent: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[Execution]:
        """Rows stored in this test (after ``flush()``), newest first."""
        __tracebackhide__ = True
        self.flush()
        return self.rows(agent=agent, status=status, limit=limit)

    def rows(
        self,
        *,
        agent: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        ids: list[uuid.UUID] | None = None,
    ) -> list[Execution]:
        """Rows stored in this test, without draining first."""
        wanted: list[uuid.UUID] | None = ids
        if self._scoped:
            wanted = [i for i in (ids if ids is not None else self._ids) if i in self._ids]
            if not wanted:
                return []
        store = get_store(self.database_url)
        return store.executions(agent=agent, status=status, limit=limit, ids=wanted)

    @property
    def spooled(self) -> list[dict[str, Any]]:
        """The wire records waiting in this test's spool directory."""
        records: list[dict[str, Any]] = []
        for path in get_spool(self.spool_dir, self.config.spool_max_bytes).files():
            for line in path.read_bytes().splitlines():
                if line.strip():
                    records.append(orjson.loads(line))
        return records

    @property
    def log_messages(self) -> list[str]:
        """agentlog's own warnings and errors in this test."""
        return list(self._log.messages)

    def _log_tail(self, limit: int = 5) -> str:
        messages = self._log.messages[-limit:]
        if not messages:
            return ""
        return "agentlog logged:\n" + "".join(f"  {m}\n" for m in messages)

    def stats(self) -> dict[str, int]:
        """``agentlog.stats()`` for this test (the counters start at zero in each test)."""
        return agentlog.stats()


@contextmanager
def harness(
    mode: str | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    allow_fallback: bool = False,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> Iterator[Harness]:
    """The fixtures' twin as a context manager, for code that runs several times in one
    test (hypothesis ``@given``: function fixtures are not reset between examples).

    ``mode`` defaults to the run's (``--agentlog-mode``, the ini option, ``sync``);
    ``config`` is what ``agentlog_config`` would return. A fallback the block did
    not allow fails it with ``AssertionError`` when it ends.
    """
    defaults = session_defaults()
    resolved = defaults.mode
    if mode is not None:
        if mode not in MODES:
            raise ValueError(
                f"pytest_agentlog.harness(): invalid mode {mode!r}; "
                f"choose one of: {', '.join(MODES)}"
            )
        resolved = Resolved(mode, "pytest_agentlog.harness(mode=...)")
    with tempfile.TemporaryDirectory(prefix="agentlog-spool-") as spool:
        current = Harness(
            resolved.mode,
            spool_dir=Path(spool),
            options=config,
            allow_fallback=allow_fallback,
            database_url=database_url or defaults.database_url,
            redis_url=redis_url or defaults.redis_url,
            mode_source=resolved.source,
        ).start()
        try:
            yield current
        except BaseException:
            current.stop()
            raise
        problems = current.stop()
        if problems:
            raise AssertionError("\n\n".join(problems))
