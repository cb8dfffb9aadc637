"""Records on the wire and in the table.

``to_wire`` turns an ``Execution`` into a JSON-safe dict: redacted, truncated,
priced. That dict is what crosses Redis, lands in the spool and reaches the
one writer. ``to_columns`` turns a list of wire dicts back into column values.
"""

from __future__ import annotations

import logging
import math
import operator
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import String

from agentlog.clock import iso_from_wall_ns, utcnow
from agentlog.config import Config
from agentlog.execution import FIELD_NAMES, Execution, raw_times
from agentlog.pricing import compute_costs
from agentlog.schema import MONEY_PRECISION, MONEY_SCALE
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


Columns = dict[str, list[Any]]
# Why each rejected record (by its index in the input) cannot be stored: the
# first problem found, in the order of the checks below.
Rejected = dict[int, str]

_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
_REQUIRED_TEXT_FIELDS = ("agent", "status")
_TEXT_FIELDS = tuple(
    name
    for name in ROW_COLUMNS
    if isinstance(table.c[name].type, String) and name not in _REQUIRED_TEXT_FIELDS
)
_MONEY_TYPE = f"NUMERIC({MONEY_PRECISION}, {MONEY_SCALE})"
# The largest magnitude such a column takes once rounded to its scale.
_MONEY_LIMIT = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE) - Decimal(5).scaleb(-MONEY_SCALE - 1)
# Plain decimal text that fits the column as it is (what to_wire writes for most costs).
_MONEY_TEXT = re.compile(
    rf"-?[0-9]{{1,{MONEY_PRECISION - MONEY_SCALE}}}(?:\.[0-9]{{1,{MONEY_SCALE}}})?"
).fullmatch
_ROW_VALUES = operator.itemgetter(*ROW_COLUMNS)
_NONE = type(None)
_UTC_ONLY = {timezone.utc}
_TZINFO = operator.attrgetter("tzinfo")


def to_columns(records: Sequence[Any]) -> tuple[Columns, Rejected]:
    """Column values (``ROW_COLUMNS``) of the records that can be stored, and why the others cannot.

    One pass per column rather than per record, and where it can, one C-level
    check of the whole column: a column of well-formed values (what
    ``to_wire`` makes) is kept as it is, and only a column that fails the
    check is looked at value by value, to name the records at fault. Ids and
    costs stay text (canonical, and fitting the column); times become aware
    datetimes; text loses NUL, which PostgreSQL refuses.
    """
    rejected: Rejected = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            rejected[index] = f"expected a dict of execution fields, got {type(record).__name__}"
        elif not record.keys() <= FIELD_NAMES:
            unknown = ", ".join(sorted(map(str, set(record) - FIELD_NAMES)))
            rejected[index] = f"unknown field(s): {unknown}"
    if rejected:
        records = [{} if i in rejected else r for i, r in enumerate(records)]
    try:  # every column named in every record, as to_wire writes them
        columns: Columns = dict(
            zip(ROW_COLUMNS, map(list, zip(*map(_ROW_VALUES, records), strict=True)), strict=True)
        )
    except (KeyError, ValueError):  # a field left out (or no records)
        columns = {name: [r.get(name) for r in records] for name in ROW_COLUMNS}
    for name in UUID_FIELDS:
        columns[name] = _uuids(name, columns[name], rejected)
    for name in _REQUIRED_TEXT_FIELDS:
        columns[name] = _texts(name, columns[name], rejected, required=True)
    for name in TIME_FIELDS:
        columns[name] = _times(name, columns[name], rejected)
    for name in COST_FIELDS:
        columns[name] = _costs(name, columns[name], rejected)
    for name in INT_FIELDS:
        columns[name] = _ints(name, columns[name], rejected)
    columns["duration_ms"] = _floats("duration_ms", columns["duration_ms"], rejected)
    for name in _TEXT_FIELDS:
        columns[name] = _texts(name, columns[name], rejected)
    if rejected:
        keep = [i for i in range(len(records)) if i not in rejected]
        columns = {name: [values[i] for i in keep] for name, values in columns.items()}
    return columns, rejected


def _present(values: list[Any]) -> list[Any]:
    return [v for v in values if v is not None] if None in values else values


def _uuids(name: str, values: list[Any], rejected: Rejected) -> list[Any]:
    required = name == "id"
    present = _present(values)
    if (
        (not required or len(present) == len(values))
        and set(map(type, present)) <= {str}
        and all(map(_UUID_TEXT, present))
    ):
        return values
    out: list[Any] = []
    for index, value in enumerate(values):
        if value is None:
            if required:
                rejected.setdefault(index, "id is missing")
        elif not (type(value) is str and _UUID_TEXT(value)):
            try:
                value = str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
            except ValueError:
                rejected.setdefault(index, f"{name}={value!r} is not a UUID")
                value = None
        out.append(value)
    return out


def _texts(name: str, values: list[Any], rejected: Rejected, required: bool = False) -> list[Any]:
    present = values if required else _present(values)
    if (
        set(map(type, present)) <= {str}
        and "\x00" not in "".join(present)
        and (not required or "" not in present)
    ):
        return values
    out: list[Any] = []
    for index, value in enumerate(values):
        if required and (not isinstance(value, str) or not value):
            rejected.setdefault(index, f"{name}={value!r} must be a non-empty string")
        elif value is not None:
            value = str.__str__(value) if isinstance(value, str) else str(value)
            value = value.replace("\x00", "\ufffd")
        out.append(value)
    return out


def _times(name: str, values: list[Any], rejected: Rejected) -> list[Any]:
    parse = datetime.fromisoformat
    out: list[Any]
    try:
        out = list(map(parse, values))
    except (TypeError, ValueError):  # a NULL, or not a timestamp
        out = []
        for index, value in enumerate(values):
            try:
                out.append(None if value is None else parse(value))
            except (TypeError, ValueError):
                rejected.setdefault(index, f"{name}={value!r} is not an ISO 8601 timestamp")
                out.append(None)
    if name == "started_at":
        for index, value in enumerate(out):
            if value is None:
                rejected.setdefault(index, "started_at is missing")
    # Aware UTC is what to_wire writes; a naive time is read as UTC.
    if set(map(_TZINFO, _present(out))) - _UTC_ONLY:
        out = [None if v is None else _utc(v) for v in out]
    return out


def _costs(name: str, values: list[Any], rejected: Rejected) -> list[Any]:
    present = _present(values)
    if set(map(type, present)) <= {str} and all(map(_MONEY_TEXT, present)):
        return values
    out: list[Any] = []
    for index, value in enumerate(values):
        if value is not None and not (type(value) is str and _MONEY_TEXT(value)):
            try:
                number = Decimal(value if type(value) is str else str(value))
            except (InvalidOperation, ValueError):
                rejected.setdefault(index, f"{name}={value!r} is not a number")
            else:
                if not (number.is_finite() and abs(number) < _MONEY_LIMIT):
                    rejected.setdefault(
                        index, f"{name}={value!r} is out of range for {_MONEY_TYPE}"
                    )
                value = str(number)
        out.append(value)
    return out


def _ints(name: str, values: list[Any], rejected: Rejected) -> list[Any]:
    present = _present(values)
    if not present or (
        set(map(type, present)) == {int} and min(present) >= 0 and max(present) <= INT32_MAX
    ):
        return values
    out: list[Any] = []
    for index, value in enumerate(values):
        if value is not None:
            if not isinstance(value, int):
                rejected.setdefault(index, f"{name}={value!r} is not an integer")
            elif not 0 <= value <= INT32_MAX:
                # The column is a 32-bit integer: the server would fail the whole batch.
                rejected.setdefault(index, f"{name}={value!r} is out of range (0 to {INT32_MAX})")
            else:
                value = int(value)  # a bool, say: one type per column
        out.append(value)
    return out


def _floats(name: str, values: list[Any], rejected: Rejected) -> list[Any]:
    if set(map(type, values)) <= {float, _NONE}:
        return values
    out: list[Any] = []
    for index, value in enumerate(values):
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError, OverflowError):
                rejected.setdefault(index, f"{name}={value!r} is not a number")
        out.append(value)
    return out


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
