"""The circuit breaker in front of the queue."""

from __future__ import annotations

from agentlog.clock import deadline_clock


class CircuitBreaker:
    """Stops trying a dead Redis on every batch; probes it again after ``cooldown`` seconds."""

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.opened_at: float | None = None
        self.last_reason = ""

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def allow(self) -> bool:
        """True when a call may go through (closed, or open long enough for one probe)."""
        if self.opened_at is None:
            return True
        return deadline_clock() - self.opened_at >= self.cooldown

    def success(self) -> None:
        self.opened_at = None

    def failure(self, reason: str) -> None:
        self.opened_at = deadline_clock()
        self.last_reason = reason
