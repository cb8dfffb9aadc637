"""Time sources.

Timestamps and durations follow ``datetime.now`` and ``time.perf_counter`` so
that freezegun moves them. Deadlines (flush timeouts, flush intervals, the
circuit breaker) must keep moving under a frozen clock, or ``flush()`` would
never return inside ``freeze_time``. freezegun swaps module attributes that are
the real functions; an attribute of an object is out of its reach.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from types import SimpleNamespace

_real = SimpleNamespace(monotonic=time.monotonic)


def utcnow() -> datetime:
    """The wall clock, timezone-aware UTC (frozen under freezegun)."""
    return datetime.now(timezone.utc)


def duration_clock() -> float:
    """Seconds from a monotonic clock for durations (moved by freezegun's tick)."""
    return time.perf_counter()


def deadline_clock() -> float:
    """Seconds from the real monotonic clock, which freezegun cannot freeze."""
    return float(_real.monotonic())
