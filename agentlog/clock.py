"""Time sources.

Timestamps and durations follow ``datetime.now`` and ``time.perf_counter`` so
that freezegun moves them. Deadlines (flush timeouts, flush intervals, the
circuit breaker) must keep moving under a frozen clock, or ``flush()`` would
never return inside ``freeze_time``. freezegun swaps module attributes that are
the real functions; an attribute of an object is out of its reach.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

_real = SimpleNamespace(monotonic=time.monotonic)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# The caller's hot path reads these two directly (a function call more is a
# measurable share of it). They are module attributes bound to the real
# functions, which is what freezegun swaps, so they freeze and tick with it.
wall_clock_ns = time.time_ns
"""Nanoseconds since the Unix epoch (frozen under freezegun)."""
duration_clock = time.perf_counter
"""Seconds from a monotonic clock for durations (moved by freezegun's tick)."""


def utcnow() -> datetime:
    """The wall clock, timezone-aware UTC (frozen under freezegun)."""
    return datetime.now(timezone.utc)


def from_wall_ns(ns: int) -> datetime:
    """The aware UTC ``datetime`` of a ``wall_clock_ns()`` reading (exact to the microsecond)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


# The last whole second formatted by iso_from_wall_ns: records of a batch
# mostly share their seconds. A (second, text) pair, replaced in one store.
_last_second: tuple[int, str] = (-1, "")


def iso_from_wall_ns(ns: int) -> str:
    """``from_wall_ns(ns).isoformat()``, without building the ``datetime``.

    The flusher formats two timestamps per record; this costs a fraction of
    building and formatting a datetime.
    """
    global _last_second
    seconds, micros = divmod(ns // 1000, 1_000_000)
    second, text = _last_second
    if second != seconds:
        text = (_EPOCH + timedelta(seconds=seconds)).isoformat()[:19]
        _last_second = (seconds, text)
    return f"{text}.{micros:06d}+00:00" if micros else f"{text}+00:00"


def deadline_clock() -> float:
    """Seconds from the real monotonic clock, which freezegun cannot freeze."""
    return float(_real.monotonic())
