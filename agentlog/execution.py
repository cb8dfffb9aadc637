"""The record of one agent call."""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from agentlog.clock import from_wall_ns

STATUSES: tuple[str, ...] = ("running", "success", "error", "timeout")


# A private generator: os.urandom releases the GIL, and on the caller's hot path
# that hands the GIL to the flusher thread for a whole switch interval (~5 ms).
# Private, so that tests seeding the global ``random`` cannot make ids repeat.
_rng = random.Random(os.urandom(32))
_MS_MASK = (1 << 48) - 1
_RAND_B_MASK = (1 << 62) - 1
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown  # an Enum member lookup costs ~0.6 µs
_set_slot = object.__setattr__


def _reseed_after_fork() -> None:
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed_after_fork)


def new_id(at_ns: int | None = None) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Generated in the process, so a retried or replayed record keeps its key,
    and time-ordered, so the primary key index stays append-mostly. ``at_ns``
    (default: now) is the wall-clock time the id is ordered by.
    """
    ms = ((time.time_ns() if at_ns is None else at_ns) // 1_000_000) & _MS_MASK
    rand = _rng.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & _RAND_B_MASK)
    # uuid.UUID(int=...) re-validates what is valid by construction; this runs
    # on the caller's thread for every record, so set the two slots directly.
    new = object.__new__(uuid.UUID)
    _set_slot(new, "int", value)
    _set_slot(new, "is_safe", _UNKNOWN_SAFETY)
    return new


@dataclass(eq=True)
class Execution:
    """One agent call: what ran, what it cost, how it ended."""

    agent: str
    model: str | None = None
    provider: str | None = None
    status: str = "running"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    input_cost: Decimal | float | None = None
    output_cost: Decimal | float | None = None
    total_cost: Decimal | float | None = None
    finish_reason: str | None = None
    error_class: str | None = None
    error_message: str | None = None
    parameters: Any = None
    system_prompt: Any = None
    prompt: Any = None
    response: Any = None
    tool_calls: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None
    request_id: str | None = None
    parent_id: uuid.UUID | None = None
    tenant_id: str | None = None
    id: uuid.UUID = field(default_factory=new_id)

    def __getstate__(self) -> dict[str, Any]:
        # A copy or a pickle must carry this record's id and times, not make its own.
        for name in _LAZY_FIELDS:
            getattr(self, name)
        return self.__dict__

    def usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_tokens: int | None = None,
    ) -> Execution:
        """Record token usage; several LLM calls in one run add up."""
        if input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + input_tokens
        if output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + output_tokens
        if cached_tokens is not None:
            self.cached_tokens = (self.cached_tokens or 0) + cached_tokens
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Execution:
        """An ``Execution`` from a dict of its fields; unknown keys -> ``TypeError`` naming them."""
        unknown = sorted(set(data) - FIELD_NAMES)
        if unknown:
            raise TypeError(
                f"agentlog: unknown Execution field(s): {', '.join(unknown)}; "
                f"known: {', '.join(FIELD_NAMES_ORDERED)}"
            )
        if "agent" not in data:
            raise TypeError("agentlog: an Execution needs an 'agent' name")
        values = dict(data)
        for key in ("id", "parent_id"):
            if isinstance(values.get(key), str):
                values[key] = uuid.UUID(values[key])
        if values.get("id") is None:
            values.pop("id", None)
        if values.get("metadata") is None:
            values["metadata"] = {}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a shallow dict (values not converted)."""
        return {name: getattr(self, name) for name in FIELD_NAMES_ORDERED}


FIELD_NAMES_ORDERED: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Execution))

# Where ``track()`` leaves its raw clock readings in a record's ``__dict__``:
# the wall clock at the start (``clock.wall_clock_ns()``), and at the end a
# (duration in seconds, wall clock) pair.
STARTED_NS = "_started_ns"
FINISHED = "_finished"


def raw_times(execution: Execution) -> tuple[int | None, int | None]:
    """The wall-clock readings ``started_at`` and ``completed_at`` would be made from.

    (None for a field that was set, or that ``track()`` did not time.) Lets
    ``to_wire`` format them without making the ``datetime`` fields.
    """
    values = execution.__dict__
    started_ns = None if "started_at" in values else values.get(STARTED_NS)
    finished = None if "completed_at" in values else values.get(FINISHED)
    return started_ns, None if finished is None else finished[1]


def _made_id(values: dict[str, Any]) -> uuid.UUID:
    return new_id(values.get(STARTED_NS))


def _made_metadata(values: dict[str, Any]) -> dict[str, Any]:
    return {}


def _made_started_at(values: dict[str, Any]) -> datetime | None:
    started_ns = values.get(STARTED_NS)
    return None if started_ns is None else from_wall_ns(started_ns)


def _made_completed_at(values: dict[str, Any]) -> datetime | None:
    finished = values.get(FINISHED)
    return None if finished is None else from_wall_ns(finished[1])


def _made_duration_ms(values: dict[str, Any]) -> float | None:
    finished = values.get(FINISHED)
    # Rounded to the microsecond: finer digits are clock noise (and under
    # freezegun, float error: a 0.1 s tick would read 100.00000023 ms).
    return None if finished is None else round(finished[0] * 1000.0, 3)


def _lazy_field(name: str, make: Callable[[dict[str, Any]], Any]) -> property:
    """A field that, while unset, is made from the record on first read.

    ``track()`` makes a record per agent call on the caller's thread and sets
    only what it was given: ``id`` and ``metadata`` (the fields with
    factories) and the timing it leaves as raw clock readings
    (``started_at``, ``completed_at``, ``duration_ms``) are made here, for
    most records on the flusher thread.

    A property rather than ``__getattr__``: a class with ``__getattr__`` makes
    every attribute read of every record slower (CPython cannot specialize
    them), on the caller's thread too. A value that cannot be made yet (the
    end of a record still running) reads as None and is not kept.
    ``setdefault`` is atomic, so two threads reading a new id at the same
    moment still agree on one.
    """

    def get(self: Execution) -> Any:
        values = self.__dict__
        try:
            return values[name]
        except KeyError:
            value = make(values)
            return None if value is None else values.setdefault(name, value)

    def set_(self: Execution, value: Any) -> None:
        self.__dict__[name] = value

    return property(get, set_)


def _total_tokens(self: Execution) -> int | None:
    # Unless set, the sum of the parts: it follows usage() at no cost to it.
    values = self.__dict__
    total = values.get("total_tokens")
    if total is not None:
        return total  # type: ignore[no-any-return]
    input_tokens = values.get("input_tokens")
    output_tokens = values.get("output_tokens")
    if input_tokens is None and output_tokens is None:
        return None
    try:
        return (input_tokens or 0) + (output_tokens or 0)
    except TypeError:  # a bad count: to_wire reports it when it serializes the record
        return None


def _set_total_tokens(self: Execution, value: int | None) -> None:
    self.__dict__["total_tokens"] = value


_LAZY_FIELDS = {
    "id": _made_id,
    "metadata": _made_metadata,
    "started_at": _made_started_at,
    "completed_at": _made_completed_at,
    "duration_ms": _made_duration_ms,
}
for _name, _make in _LAZY_FIELDS.items():
    setattr(Execution, _name, _lazy_field(_name, _make))
# Execution.total_tokens (a dataclass field) becomes this property.
setattr(Execution, "total_tokens", property(_total_tokens, _set_total_tokens))  # noqa: B010
FIELD_NAMES: frozenset[str] = frozenset(FIELD_NAMES_ORDERED)
