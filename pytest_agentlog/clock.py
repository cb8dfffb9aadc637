"""Frozen time for agentlog's timestamps and durations (freezegun)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from freezegun import freeze_time

# A whole second: ticks of whole milliseconds and binary fractions (2.5, 0.25)
# then give exact durations (freezegun's perf_counter is seconds since the epoch).
START = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


class AgentlogClock:
    """The ``agentlog_clock`` fixture: time stands still until ``tick()`` moves it.

    ``datetime.now()`` (``started_at``, ``completed_at``) and
    ``time.perf_counter()`` (``duration_ms``) follow it; agentlog's deadlines
    (flush and shutdown timeouts, the flusher's interval) run on a real clock,
    so ``agentlog.flush()`` and ``agentlog.shutdown()`` still return. asyncio
    keeps real time too, so ``await asyncio.sleep()`` does not hang.
    """

    def __init__(self, start: datetime = START) -> None:
        self.start = start
        # pytest times its phases with the clock too: it keeps the real one.
        self._freezer = freeze_time(start, ignore=["_pytest.timing"], real_asyncio=True)
        self._factory: Any = None

    def __enter__(self) -> AgentlogClock:
        self._factory = self._freezer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._factory is not None:
            self._freezer.stop()
            self._factory = None

    def __repr__(self) -> str:
        return f"<agentlog_clock at {self.now().isoformat()}>"

    def now(self) -> datetime:
        """The frozen time, timezone-aware UTC."""
        self._check()
        return self._factory().replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]

    def tick(self, seconds: float | timedelta = 1.0) -> datetime:
        """Move time forward by ``seconds``; returns the new time (aware UTC)."""
        self._check()
        delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if delta < timedelta(0):
            raise ValueError(f"agentlog_clock.tick(): time only moves forward, got {seconds!r}")
        self._factory.tick(delta)
        return self.now()

    def move_to(self, when: datetime | str) -> datetime:
        """Jump to ``when`` (a datetime, naive means UTC, or an ISO string)."""
        self._check()
        self._factory.move_to(when)
        return self.now()

    def _check(self) -> None:
        if self._factory is None:
            raise RuntimeError("agentlog_clock is not running (the test that froze time ended)")
