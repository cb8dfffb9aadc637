"""Records on the wire and in the table.

``to_wire`` turns an ``Execution`` into a JSON-safe dict: redacted, truncated,
priced. That dict is what crosses Redis, lands in the spool and reaches the
one writer. ``to_row`` turns a wire dict back into column values.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from agentlog.clock import iso_from_wall_ns, utcnow
from agentlog.config import Config
from agentlog.execution import FIELD_NAMES, Execution, raw_times
from agentlog.pricing import compute_costs
from agentlog.schema import executions as table

logger = logging.getLogger("agentlog")

Wire = dict[str, Any]

JSON_FIELDS = ("parameters", "prompt", "response", "tool_calls", "metadata")
INT_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "cached_tokens")
COST_FIELDS = ("input_cost", "output_cost", "total_cost")
TIME_FIELDS = ("started_at", "completed_at")
UUID_FIELDS = ("id", "parent_id")
_OPTIONAL_TEXT_FIELDS = (
    "model",
    "provider",
    "finish_reason",
    "error_class",
    "trace_id",
    "request_id",
    "tenant_id",
)
# Bounded text columns: longer values are cut to fit instead of failing the insert.
STRING_LIMITS: dict[str, int] = {
    column.name: column.type.length  # type: ignore[attr-defined]
    for column in table.columns
    if getattr(column.type, "length", None) is not None
}
INT32_MAX = 2**31 - 1
# Plain str (SQLAlchemy's names are a str subclass, which orjson rejects as keys).
ROW_COLUMNS: tuple[str, ...] = tuple(str(c.name) for c in table.columns if c.name != "logged_at")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is timezone.utc:
        return value  # what to_wire and track() produce: nothing to convert
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _int_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        logger.warning("agentlog: %s=%r is not an integer; stored as NULL", name, value)
        return None
    if not 0 <= number <= INT32_MAX:
        logger.warning("agentlog: %s=%r is out of range; stored as NULL", name, value)
        return None
    return number


def _float_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        logger.warning("agentlog: %s=%r is not a number; stored as NULL", name, value)
        return None
    return number if math.isfinite(number) else None


def _decimal_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        logger.warning("agentlog: %s=%r is not a number; stored as NULL", name, value)
        return None
    return str(number) if number.is_finite() else None


def _short_text(name: str, value: Any, config: Config) -> str | None:
    if value is None:
        return None
    text = config.redaction.text(value if isinstance(value, str) else str(value))
    limit = STRING_LIMITS.get(name)
    return text[:limit] if limit else text


def to_wire(execution: Execution, config: Config) -> Wire:
    """The redacted, JSON-safe form of ``execution`` (never raises for bad field values)."""
    redaction = config.redaction
    wire: Wire = {
        "id": str(execution.id),
        "parent_id": str(execution.parent_id) if execution.parent_id else None,
        "agent": _short_text("agent", execution.agent, config) or "unknown",
        "status": _short_text("status", execution.status, config) or "success",
    }
    for name in _OPTIONAL_TEXT_FIELDS:
        value = getattr(execution, name)
        # Most are unset: skip the call for them (this runs for every record).
        wire[name] = None if value is None else _short_text(name, value, config)
    wire["trace_id"] = wire["trace_id"] or wire["id"]
    for name, raw_ns in zip(TIME_FIELDS, raw_times(execution), strict=True):
        if raw_ns is not None:
            wire[name] = iso_from_wall_ns(raw_ns)
            continue
        value = getattr(execution, name)
        wire[name] = _utc(value).isoformat() if isinstance(value, datetime) else None
    # A row needs a start; a record made by hand may have none (or not a datetime).
    wire["started_at"] = wire["started_at"] or wire["completed_at"] or utcnow().isoformat()
    wire["duration_ms"] = _float_or_none("duration_ms", execution.duration_ms)
    for name in INT_FIELDS:
        wire[name] = _int_or_none(name, getattr(execution, name))
    if (
        wire["total_tokens"] is None
        and execution.total_tokens is None  # else it was out of range, and reported
        and (wire["input_tokens"] is not None or wire["output_tokens"] is not None)
    ):
        # The parts as stored (a count given as text, say, is one once normalized).
        total = (wire["input_tokens"] or 0) + (wire["output_tokens"] or 0)
        wire["total_tokens"] = _int_or_none("total_tokens", total)
    for name in COST_FIELDS:
        wire[name] = _decimal_text(name, getattr(execution, name))
    if (
        config.compute_costs
        and wire["model"]
        and wire["total_cost"] is None
        and (wire["input_tokens"] or wire["output_tokens"])
    ):
        costs = compute_costs(
            wire["model"],
            wire["provider"],
            wire["input_tokens"],
            wire["output_tokens"],
            wire["cached_tokens"],
        )
        if costs is not None:
            wire["input_cost"] = wire["input_cost"] or str(costs.input)
            wire["output_cost"] = wire["output_cost"] or str(costs.output)
            wire["total_cost"] = str(costs.total)
            wire["provider"] = wire["provider"] or costs.provider
    wire["error_message"] = _short_text("error_message", execution.error_message, config)
    dropped = set()
    if not config.persist_prompts:
        dropped |= {"system_prompt", "prompt"}
    if not config.persist_responses:
        dropped.add("response")
    for name in JSON_FIELDS:
        value = getattr(execution, name)
        wire[name] = None if name in dropped else redaction.apply(value)
    system_prompt = None if "system_prompt" in dropped else execution.system_prompt
    if system_prompt is not None and not isinstance(system_prompt, str):
        system_prompt = dumps(redaction.apply(system_prompt)).decode()
    wire["system_prompt"] = redaction.text(system_prompt) if system_prompt is not None else None
    return wire


class BadRecord(ValueError):
    """A wire record that cannot be stored; the message names the field."""


def _parse_time(name: str, value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except (TypeError, ValueError) as exc:
        raise BadRecord(f"{name}={value!r} is not an ISO 8601 timestamp") from exc


def to_row(wire: Any) -> dict[str, Any]:
    """Column values for one wire record. Raises ``BadRecord`` naming what is wrong."""
    if not isinstance(wire, dict):
        raise BadRecord(f"expected a dict of execution fields, got {type(wire).__name__}")
    unknown = set(wire) - FIELD_NAMES
    if unknown:
        raise BadRecord(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    row: dict[str, Any] = {name: wire.get(name) for name in ROW_COLUMNS}
    for name in UUID_FIELDS:
        value = row[name]
        if value is None:
            if name == "id":
                raise BadRecord("id is missing")
            continue
        try:
            row[name] = uuid.UUID(str(value))
        except ValueError as exc:
            raise BadRecord(f"{name}={value!r} is not a UUID") from exc
    if not isinstance(row["agent"], str) or not row["agent"]:
        raise BadRecord(f"agent={row['agent']!r} must be a non-empty string")
    for name in TIME_FIELDS:
        row[name] = _parse_time(name, row[name])
    if row["started_at"] is None:
        raise BadRecord("started_at is missing")
    for name in COST_FIELDS:
        if row[name] is not None:
            try:
                row[name] = Decimal(str(row[name]))
            except InvalidOperation as exc:
                raise BadRecord(f"{name}={row[name]!r} is not a number") from exc
    for name in INT_FIELDS:
        value = row[name]
        if value is None:
            continue
        if not isinstance(value, int):
            raise BadRecord(f"{name}={value!r} is not an integer")
        if not 0 <= value <= INT32_MAX:
            # The column is a 32-bit integer: the server would fail the whole batch.
            raise BadRecord(f"{name}={value!r} is out of range (0 to {INT32_MAX})")
    return row


def row_to_execution(row: Any) -> Execution:
    """An ``Execution`` from a stored row (timestamps as aware UTC, costs as Decimal)."""
    values = {name: row[name] for name in FIELD_NAMES}
    for name in TIME_FIELDS:
        if values[name] is not None:
            values[name] = _utc(values[name])
    for name in COST_FIELDS:
        if values[name] is not None and not isinstance(values[name], Decimal):
            values[name] = Decimal(str(values[name]))
    for name in UUID_FIELDS:
        if values[name] is not None and not isinstance(values[name], uuid.UUID):
            values[name] = uuid.UUID(str(values[name]))
    if values["metadata"] is None:
        values["metadata"] = {}
    return Execution(**values)
