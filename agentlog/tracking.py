"""``track()``, ``@agent`` and ``log()``: where records are made."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from agentlog import clock, counters, runtime
from agentlog.clock import duration_clock, utcnow, wall_clock_ns
from agentlog.execution import FIELD_NAMES, FINISHED, STARTED_NS, Execution

logger = logging.getLogger("agentlog")

_current: contextvars.ContextVar[Execution | None] = contextvars.ContextVar(
    "agentlog_current_execution", default=None
)
_MANAGED = frozenset({"id", "agent", "status", "started_at", "completed_at", "duration_ms"})
_TRACKABLE = FIELD_NAMES - _MANAGED
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)
_new_record = object.__new__

F = TypeVar("F", bound=Callable[..., Any])


def current_execution() -> Execution | None:
    """The execution being tracked in this context (thread or asyncio task), if any."""
    return _current.get()


def _unknown_fields_into_metadata(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields ``track()`` sets, with the others kept in metadata rather than failing."""
    known = {k: v for k, v in fields.items() if k in _TRACKABLE}
    extra = {k: v for k, v in fields.items() if k not in known}
    logger.warning(
        "agentlog: track() got unknown field(s) %s; kept in metadata", ", ".join(sorted(extra))
    )
    known["metadata"] = {**(known.get("metadata") or {}), **extra}
    return known


def _own_error(stage: str, execution: Execution | None, error: BaseException) -> None:
    """An error of agentlog's own inside track(): counted and logged, never raised."""
    counters.incr("errors")
    if stage == "start":
        logger.error("agentlog: track() could not start: %r", error)
    else:
        agent = execution.__dict__.get("agent") if execution is not None else None
        logger.error("agentlog: could not record %s: %r", agent, error)


class _PyTracker:
    """The hot path of ``track()`` in Python; ``agentlog._speedups.Tracker`` is its C twin.

    The three methods below run on the caller's thread for every call: each
    line is paid at every agent call, so they touch as little as they can (no
    helper calls on the common path, lazy id and metadata). Both twins must
    behave alike: the test suite runs against each.
    """

    __slots__ = ("_execution", "_start", "_token")

    def __init__(self, agent: str, *, model: str | None = None, **fields: Any) -> None:
        self._token: contextvars.Token[Execution | None] | None = None
        # Only what was given: the other fields are made when first read (execution.py).
        if fields:
            if not fields.keys() <= _TRACKABLE:
                fields = _unknown_fields_into_metadata(fields)
            if "metadata" in fields and fields["metadata"] is None:
                fields["metadata"] = {}
        fields["agent"] = agent
        fields["model"] = model
        self._execution = execution = _new_record(Execution)
        # The keyword arguments' dict is new at every call: it becomes the record's own.
        execution.__dict__ = fields

    def __enter__(self) -> Execution:
        execution = self._execution
        try:
            parent = _current.get()
            if parent is not None:
                _link_to_parent(execution, parent)
            execution.__dict__[STARTED_NS] = wall_clock_ns()
            self._token = _current.set(execution)
        except Exception as exc:
            _own_error("start", execution, exc)
        try:
            self._start = duration_clock()
        except Exception as exc:
            _own_error("start", execution, exc)
        return execution

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        execution = self._execution
        try:
            seconds = duration_clock() - self._start
            # Read as completed_at and duration_ms (made when first read).
            execution.__dict__[FINISHED] = (seconds, wall_clock_ns())
            token = self._token
            if token is not None:
                self._token = None
                # A try costs nothing here; contextlib.suppress() would build an object.
                try:  # noqa: SIM105
                    _current.reset(token)
                except ValueError:
                    # Exited in another context than it was entered (e.g. a generator
                    # resumed elsewhere): the other context keeps its own value.
                    pass
            if exc is not None:
                _record_error(execution, exc)
            elif execution.status == "running":
                execution.status = "success"
            runtime.submit(execution)
        except Exception as error:  # never let agentlog's own error replace the caller's
            _own_error("record", execution, error)


def _link_to_parent(execution: Execution, parent: Execution) -> None:
    if execution.parent_id is None:
        execution.parent_id = parent.id
    if execution.trace_id is None:
        # A root's trace id is its own id (filled in when serialized).
        execution.trace_id = parent.trace_id or str(parent.id)


def _record_error(execution: Execution, exc: BaseException) -> None:
    execution.status = "timeout" if isinstance(exc, _TIMEOUTS) else "error"
    execution.error_class = _qualified_name(type(exc))
    execution.error_message = str(exc) or None


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _accelerated_base() -> type[_PyTracker] | None:
    """The C twin, set up, unless it is not built or AGENTLOG_NO_EXTENSIONS is set."""
    if os.environ.get("AGENTLOG_NO_EXTENSIONS"):
        return None
    try:
        from agentlog import _speedups
    except ImportError:
        return None
    _speedups.setup(
        Execution,
        _current,
        vars(clock),
        vars(runtime),
        _TRACKABLE,
        _unknown_fields_into_metadata,
        _link_to_parent,
        _record_error,
        _own_error,
        time.time_ns,
        time.perf_counter,
    )
    return _speedups.Tracker  # type: ignore[return-value]


_Base = _accelerated_base()
ACCELERATED = _Base is not None
"""True when track() runs its hot path in C (agentlog._speedups)."""


class track(_Base or _PyTracker):  # type: ignore[misc]
    """Record one agent call: ``with track("support-bot", model="gpt-4o") as run:``.

    Works with ``with`` and ``async with``. On exit it sets the status, the
    timing and the error, then logs the record. The caller's exception is
    re-raised untouched; an error of agentlog's own never reaches the caller.
    """

    __slots__ = ()

    @property
    def execution(self) -> Execution:
        return self._execution  # type: ignore[no-any-return]

    async def __aenter__(self) -> Execution:
        return self.__enter__()  # type: ignore[no-any-return]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


if ACCELERATED:
    from agentlog import _speedups

    _speedups.install(track)


def _bind_arguments(signature: inspect.Signature | None, args: Any, kwargs: Any) -> Any:
    if signature is None:
        return {"args": list(args), "kwargs": dict(kwargs)}
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": dict(kwargs)}
    arguments = dict(bound.arguments)
    for name in ("self", "cls"):
        arguments.pop(name, None)
    return arguments


@overload
def agent(name: F, /) -> F: ...
@overload
def agent(
    name: str | None = None, *, model: str | None = None, **fields: Any
) -> Callable[[F], F]: ...
def agent(name: Any = None, *, model: str | None = None, **fields: Any) -> Any:
    """Decorate a ``def`` or ``async def``: each call is tracked, its arguments
    recorded as ``parameters`` and its return value as ``response``.

    ``@agentlog.agent`` and ``@agentlog.agent("name", model="...")`` both work.
    """
    if callable(name):
        return agent()(name)

    def decorate(func: F) -> F:
        agent_name = name or func.__qualname__
        try:
            signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            signature = None

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                tracker = track(agent_name, model=model, **fields)
                tracker.execution.parameters = _bind_arguments(signature, args, kwargs)
                async with tracker as execution:
                    result = await func(*args, **kwargs)
                    execution.response = result
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracker = track(agent_name, model=model, **fields)
            tracker.execution.parameters = _bind_arguments(signature, args, kwargs)
            with tracker as execution:
                result = func(*args, **kwargs)
                execution.response = result
                return result

        return wrapper  # type: ignore[return-value]

    return decorate


def log(execution: Execution | dict[str, Any]) -> Execution:
    """Log a finished ``Execution`` (or a dict of its fields). Returns the record.

    A dict with unknown fields or no ``agent`` raises ``TypeError`` naming them
    (a programming error, caught at once in tests); storage errors never raise.
    """
    if isinstance(execution, dict):
        record = Execution.from_dict(execution)
    elif isinstance(execution, Execution):
        record = execution
    else:
        raise TypeError(
            f"agentlog.log() expects an Execution or a dict, got {type(execution).__name__}"
        )
    if record.status == "running":
        record.status = "error" if record.error_class else "success"
    if record.started_at is None:
        record.started_at = record.completed_at or utcnow()
    runtime.submit(record)
    return record
