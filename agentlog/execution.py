"""The record of one agent call."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import uuid6

STATUSES: tuple[str, ...] = ("running", "success", "error", "timeout")


def new_id() -> uuid.UUID:
    """A time-ordered UUIDv7, generated in the process so retries keep the same key."""
    return uuid.UUID(int=uuid6.uuid7().int)


@dataclass(slots=True, eq=True)
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

    def usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_tokens: int | None = None,
    ) -> Execution:
        """Record token usage (adds to what was recorded before; several LLM calls per run add up)."""
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
FIELD_NAMES: frozenset[str] = frozenset(FIELD_NAMES_ORDERED)
