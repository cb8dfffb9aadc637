"""The record of one agent call."""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

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


def new_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Generated in the process, so a retried or replayed record keeps its key,
    and time-ordered, so the primary key index stays append-mostly.
    """
    ms = (time.time_ns() // 1_000_000) & _MS_MASK
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

    @classmethod
    def begin(cls, agent: str, model: str | None) -> Execution:
        """A new record with every other field at its default.

        ``track()`` makes one per agent call on the caller's thread; setting
        four attributes (the rest are the class's defaults) costs a fraction of
        the generated 29-argument ``__init__``.
        """
        execution = object.__new__(cls)
        execution.__dict__.update(agent=agent, model=model, metadata={}, id=new_id())
        return execution

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
        # The stored row derives total_tokens when it is missing; keeping it
        # current here lets the caller read it too, at no cost to track()'s exit.
        self.total_tokens = (self.input_tokens or 0) + (self.output_tokens or 0)
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
FIELD_NAMES: frozenset[str] = frozenset(FIELD_NAMES_ORDERED)
