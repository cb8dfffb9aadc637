"""Process counters: every write, fallback, spool and drop is counted here."""

from __future__ import annotations

import os
import threading
from collections import Counter

COUNTERS: tuple[str, ...] = ("logged", "enqueued", "fallbacks", "spooled", "dropped", "errors")

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def incr(name: str, amount: int = 1) -> None:
    with _lock:
        _counts[name] += amount


def stats() -> dict[str, int]:
    """Counters since the process started (or the last ``reset``).

    ``logged`` rows written by this process, ``enqueued`` executions handed to
    Redis, ``fallbacks`` batches written synchronously because the queue
    failed, ``spooled`` executions written to the disk spool, ``dropped``
    executions lost for good, ``errors`` failures logged (each with its reason).
    """
    with _lock:
        return {name: _counts[name] for name in COUNTERS} | {
            name: count for name, count in _counts.items() if name not in COUNTERS
        }


def reset() -> None:
    with _lock:
        _counts.clear()


def _new_lock_after_fork() -> None:
    # Another thread may have held the lock at the fork; the child has no such thread.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)
