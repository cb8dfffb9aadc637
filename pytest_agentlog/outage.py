"""Simulated failures of the queue and the database, at the wire.

A queue outage makes the Redis connection the library enqueues through raise
``redis.exceptions.ConnectionError`` / ``TimeoutError`` on the first request
of each failing enqueue, the way redis-py does when the server is gone or
slow, so the real transport code meets the failure and the real fallback
chain runs. Inspection (the
``agentlog_queue`` fixture) and the worker use their own connections and keep
working. A database outage makes the store's INSERT statements raise the
driver's ``OperationalError`` (wrapped by SQLAlchemy as for a real failure).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import redis
from sqlalchemy import Engine, event

from agentlog.schema import TABLE_NAME

Kind = Literal["connection", "timeout"]
KINDS: tuple[Kind, ...] = ("connection", "timeout")
SIMULATED = "(simulated by agentlog_outage)"


@dataclass(frozen=True)
class Fallback:
    """One batch the library wrote synchronously because the queue failed."""

    reason: str
    executions: int


class Outage:
    """One simulated failure: active from creation until ``restore()`` (or the ``with`` block ends).

    Of the calls made while it is active, the first ``after`` pass, then
    ``times`` fail (every one when ``times`` is None).
    """

    def __init__(self, gate: Gate, target: str, kind: Kind, times: int | None, after: int) -> None:
        self.target = target
        self.kind = kind
        self.times = times
        self.after = after
        self.calls = 0
        self.failures = 0
        self.active = True
        self._gate = gate

    def __repr__(self) -> str:
        state = "active" if self.active else "restored"
        return (
            f"<agentlog {self.target} outage kind={self.kind!r} times={self.times!r} "
            f"after={self.after} {state}, {self.failures} of {self.calls} calls failed>"
        )

    def __enter__(self) -> Outage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def restore(self) -> None:
        """End the outage: the next calls go through."""
        self.active = False
        self._gate.remove(self)

    def take(self) -> bool:
        """Count one call; True when it must fail."""
        if not self.active:
            return False
        self.calls += 1
        if self.calls <= self.after:
            return False
        if self.times is not None and self.failures >= self.times:
            return False
        self.failures += 1
        return True


class Gate:
    """The active outages of one target; asked once per call whether it fails."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._outages: list[Outage] = []
        self._lock = threading.Lock()

    def open(self, kind: str, times: int | None, after: int) -> Outage:
        if kind not in KINDS:
            raise ValueError(
                f"agentlog_outage.{self.target}(): kind must be one of "
                f"{', '.join(map(repr, KINDS))}, got {kind!r}"
            )
        if times is not None and (isinstance(times, bool) or not isinstance(times, int)):
            raise TypeError(f"agentlog_outage.{self.target}(): times must be an int or None")
        if times is not None and times < 1:
            raise ValueError(
                f"agentlog_outage.{self.target}(): times must be at least 1 "
                f"(or None: every call until restored), got {times!r}"
            )
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError(
                f"agentlog_outage.{self.target}(): after must be an int >= 0, got {after!r}"
            )
        outage = Outage(self, self.target, kind, times, after)
        with self._lock:
            self._outages.append(outage)
        return outage

    def remove(self, outage: Outage) -> None:
        with self._lock:
            if outage in self._outages:
                self._outages.remove(outage)

    def restore_all(self) -> None:
        with self._lock:
            outages, self._outages = self._outages, []
        for outage in outages:
            outage.active = False

    def failing(self) -> Outage | None:
        """The outage that fails this call, if any (every active one counts the call)."""
        with self._lock:
            outages = list(self._outages)
        failed = None
        for outage in outages:
            if outage.take() and failed is None:
                failed = outage
        return failed


# -- the queue: a Redis connection class that fails on command ---------------


def redis_error(kind: Kind) -> redis.exceptions.RedisError:
    if kind == "timeout":
        return redis.exceptions.TimeoutError(f"Timeout reading from socket {SIMULATED}")
    return redis.exceptions.ConnectionError(
        f"Error 111 connecting to redis. Connection refused. {SIMULATED}"
    )


class _Tripwire:
    """Set when an enqueue must fail; the connection's next request trips it."""

    def __init__(self) -> None:
        self.kind: Kind | None = None

    def take(self) -> Kind | None:
        kind, self.kind = self.kind, None
        return kind


class _FaultyConnection:
    """Mixed into the client's connection class: a set tripwire fails the next request.

    The request fails as redis-py fails it when the server is gone or slow: the
    connection is dropped and the error raised from the socket layer up.
    """

    _agentlog_trip: _Tripwire

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        kind = self._agentlog_trip.take()
        if kind is not None:
            self.disconnect()  # type: ignore[attr-defined]
            raise redis_error(kind)
        super().send_packed_command(command, check_health)  # type: ignore[misc]


def install_queue_gate(client: redis.Redis, gate: Gate) -> redis.Redis:
    """Make enqueues through ``client`` fail while ``gate`` has an outage. Returns ``client``.

    The transport opens one pipeline per enqueue, so that is where the gate is
    asked: one enqueue is one call (whatever number of requests it makes), and
    the first request of a failing one raises.
    """
    trip = _Tripwire()
    pool = client.connection_pool
    base = pool.connection_class
    pool.connection_class = type(
        f"AgentlogOutage{base.__name__}", (_FaultyConnection, base), {"_agentlog_trip": trip}
    )
    open_pipeline = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        outage = gate.failing()
        trip.kind = outage.kind if outage is not None else None
        return open_pipeline(*args, **kwargs)

    setattr(client, "pipeline", pipeline)  # noqa: B010 - an instance attribute over the method
    return client


# -- the database: INSERTs into the executions table fail --------------------


def database_error(engine: Engine, kind: Kind) -> Exception:
    dbapi = engine.dialect.loaded_dbapi
    if kind == "timeout":
        message = f"canceling statement due to statement timeout {SIMULATED}"
    else:
        message = f"server closed the connection unexpectedly {SIMULATED}"
    error: Exception = dbapi.OperationalError(message)
    return error


def install_database_gate(engine: Engine, gate: Gate) -> None:
    """Fail the store's writes to ``agentlog_executions`` while ``gate`` has an outage."""
    insert = f"INSERT INTO {TABLE_NAME}".upper()

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if insert not in statement.upper():
            return
        outage = gate.failing()
        if outage is not None:
            raise database_error(engine, outage.kind)

    event.listen(engine, "before_cursor_execute", before_cursor_execute)


class AgentlogOutage:
    """The ``agentlog_outage`` fixture: break the queue or the database on purpose.

    ``queue()`` and ``database()`` start an outage at once and return it; use it
    as a context manager (restored when the block ends) or call ``.restore()``.
    """

    def __init__(self, queue_gate: Gate, database_gate: Gate, fallbacks: list[Fallback]) -> None:
        self._queue_gate = queue_gate
        self._database_gate = database_gate
        self._fallbacks = fallbacks

    def queue(self, kind: Kind = "connection", times: int | None = None, after: int = 0) -> Outage:
        """Make enqueues fail: ``times`` of them (None: all until restored), once ``after``
        have passed."""
        return self._queue_gate.open(kind, times, after)

    def database(
        self, kind: Kind = "connection", times: int | None = None, after: int = 0
    ) -> Outage:
        """Make the store's INSERTs fail (one per ``agentlog.store.CHUNK_SIZE`` rows of a batch)."""
        return self._database_gate.open(kind, times, after)

    @property
    def fallbacks(self) -> list[Fallback]:
        """Each batch written synchronously because the queue failed, with the reason."""
        return list(self._fallbacks)

    def restore(self) -> None:
        """End every outage started through this fixture."""
        self._queue_gate.restore_all()
        self._database_gate.restore_all()
