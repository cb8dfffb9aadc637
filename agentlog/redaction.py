"""Redaction of secrets and truncation of large values (placeholder; being written)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Redaction:
    keys: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    max_value_length: int = 10_000
    placeholder: str = "[REDACTED]"

    def apply(self, value: Any) -> Any:
        return value

    def text(self, value: str) -> str:
        return value
