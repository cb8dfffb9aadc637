"""Field matchers: compare a stored row or an enqueued record with what a test expects.

An expected value is either a plain value, compared after normalising the
forms a record takes on its way (a UUID and its text, a Decimal and a float or
its text, a datetime and its ISO text), a compiled regex (searched in the text
of the value) or a callable (a predicate on the value).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from agentlog.execution import FIELD_NAMES, FIELD_NAMES_ORDERED, Execution

MAX_SHOWN = 120


def check_fields(fields: Mapping[str, Any], where: str) -> None:
    """``TypeError`` naming unknown field names (a typo must not pass as "not found")."""
    __tracebackhide__ = True
    unknown = sorted(set(fields) - FIELD_NAMES)
    if unknown:
        raise TypeError(
            f"{where} got unknown field(s): {', '.join(unknown)}; "
            f"fields: {', '.join(FIELD_NAMES_ORDERED)}"
        )


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: what a JSON column gives back."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def same(actual: Any, expected: Any) -> bool:
    """Whether ``actual`` (from a row or the wire) satisfies ``expected``."""
    if isinstance(expected, re.Pattern):
        return actual is not None and expected.search(str(actual)) is not None
    if callable(expected) and not isinstance(expected, type):
        return bool(expected(actual))
    if actual == expected:
        return True
    if actual is None or expected is None:
        return False
    if isinstance(expected, (list, tuple, dict)):
        return bool(_plain(actual) == _plain(expected))
    if isinstance(expected, uuid.UUID) or isinstance(actual, uuid.UUID):
        return str(actual).lower() == str(expected).lower()
    if isinstance(expected, datetime) or isinstance(actual, datetime):
        left, right = _as_datetime(actual), _as_datetime(expected)
        return left is not None and left == right
    if isinstance(expected, (int, float, Decimal)) and not isinstance(expected, bool):
        left_number, right_number = _as_decimal(actual), _as_decimal(expected)
        return left_number is not None and left_number == right_number
    return False


def values_of(record: Execution | Mapping[str, Any]) -> Mapping[str, Any]:
    return record.to_dict() if isinstance(record, Execution) else record


def mismatches(record: Execution | Mapping[str, Any], fields: Mapping[str, Any]) -> list[str]:
    """The names of ``fields`` that ``record`` does not satisfy."""
    values = values_of(record)
    return [name for name, expected in fields.items() if not same(values.get(name), expected)]


def show(value: Any) -> str:
    """A short repr for messages."""
    if isinstance(value, re.Pattern):
        text = f"a match for {value.pattern!r}"
    elif callable(value) and not isinstance(value, type):
        text = f"a value for which {getattr(value, '__qualname__', repr(value))} is true"
    elif isinstance(value, uuid.UUID):
        text = str(value)
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def describe_expected(fields: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={show(value)}" for name, value in fields.items()) or "any record"


def diff_lines(
    record: Execution | Mapping[str, Any], fields: Mapping[str, Any], indent: str = "    "
) -> list[str]:
    """One line per expected field: ``ok`` or ``expected ..., found ...``."""
    values = values_of(record)
    lines = []
    for name, expected in fields.items():
        actual = values.get(name)
        if same(actual, expected):
            lines.append(f"{indent}{name}: ok ({show(actual)})")
        else:
            lines.append(f"{indent}{name}: expected {show(expected)}, found {show(actual)}")
    return lines


def closest(
    records: Iterable[Execution | Mapping[str, Any]],
    fields: Mapping[str, Any],
    limit: int = 3,
) -> list[Execution | Mapping[str, Any]]:
    """The records that satisfy most of ``fields`` (ties keep their order)."""
    ranked = sorted(
        enumerate(records), key=lambda pair: (len(mismatches(pair[1], fields)), pair[0])
    )
    return [record for _, record in ranked[:limit]]


def summary(record: Execution | Mapping[str, Any]) -> str:
    values = values_of(record)
    parts = [f"id={values.get('id')}"]
    for name in ("agent", "status", "model"):
        if values.get(name) is not None:
            parts.append(f"{name}={show(values.get(name))}")
    return ", ".join(parts)


def as_id(execution_or_id: Execution | uuid.UUID | str | Mapping[str, Any]) -> uuid.UUID:
    """The execution id of an ``Execution``, a wire dict, a UUID or its text."""
    value: Any = execution_or_id
    if isinstance(value, Execution):
        return value.id
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise TypeError(
        "expected an agentlog.Execution (what agentlog.track() yields), its id "
        f"(a UUID or its text) or a wire dict with an 'id', got {execution_or_id!r}"
    )
