"""The end of every path: database, else spool, else a counted, logged loss."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agentlog import counters
from agentlog.clock import deadline_clock
from agentlog.config import Config
from agentlog.redaction import Redaction
from agentlog.serialize import Wire
from agentlog.spool import get_spool
from agentlog.store import get_store

logger = logging.getLogger("agentlog")

_REASON_REDACTION = Redaction(max_value_length=300)
# How often a healthy writer looks for spool files left by earlier failures.
REPLAY_CHECK_INTERVAL = 30.0


def describe(exc: BaseException) -> str:
    """A one-line reason for logs and fallbacks, with any credential in it redacted."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return _REASON_REDACTION.text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def spool(records: Sequence[Wire], config: Config, reason: str) -> None:
    """Keep ``records`` on disk for replay; count and log a loss if even that fails."""
    spool_ = get_spool(config.spool_dir, config.spool_max_bytes)
    try:
        path = spool_.write(records)
    except Exception as exc:
        counters.incr("dropped", len(records))
        counters.incr("errors")
        logger.error(
            "agentlog: lost %d executions: %s, and the spool failed too (%s)",
            len(records),
            reason,
            describe(exc),
        )
        return
    counters.incr("spooled", len(records))
    logger.warning("agentlog: spooled %d executions to %s: %s", len(records), path, reason)
    spool_.replay_pending = True


def store(records: Sequence[Wire], config: Config) -> bool:
    """Insert into the database, spooling on failure. Never raises. True when stored."""
    try:
        inserted = get_store(config.database_url).insert_many(records)
    except Exception as exc:
        counters.incr("errors")
        reason = f"database write failed ({describe(exc)})"
        logger.warning("agentlog: %s", reason)
        spool(records, config, reason)
        return False
    counters.incr("logged", inserted)
    maybe_replay(config)
    return True


def maybe_replay(config: Config) -> None:
    """Replay the spool after a successful write, when there may be something in it."""
    spool_ = get_spool(config.spool_dir, config.spool_max_bytes)
    now = deadline_clock()
    due = spool_.replay_pending or now - spool_.replay_checked_at > REPLAY_CHECK_INTERVAL
    if not due or not spool_.replay_turn.acquire(blocking=False):
        return
    spool_.replay_pending, spool_.replay_checked_at = False, now
    try:
        if spool_.files():
            report = spool_.replay(get_store(config.database_url).insert_many)
            counters.incr("logged", report.inserted)
            if report.failed:
                spool_.replay_pending = True
    except Exception as exc:
        spool_.replay_pending = True
        counters.incr("errors")
        logger.warning("agentlog: spool replay failed: %s", describe(exc))
    finally:
        spool_.replay_turn.release()
