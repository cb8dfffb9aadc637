"""Routes finished records by mode and owns the process's async pipeline."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from agentlog import config as config_module
from agentlog import counters, writer
from agentlog.config import Config, get_config, on_change
from agentlog.execution import Execution
from agentlog.pipeline import EnqueueListener, FallbackListener, Pipeline
from agentlog.redis_client import RedisFactory, connect_redis
from agentlog.serialize import to_wire
from agentlog.spool import forget_spools
from agentlog.store import close_stores

logger = logging.getLogger("agentlog")

# atexit must not hang a process whose Redis and database are both gone.
ATEXIT_TIMEOUT = 5.0
RECONFIGURE_TIMEOUT = 5.0


@dataclass
class Settings:
    """Seams for the test harness (pytest_agentlog); applications leave them alone."""

    redis_factory: RedisFactory = connect_redis
    eager: bool = False
    on_fallback: list[FallbackListener] = field(default_factory=list)
    on_enqueued: list[EnqueueListener] = field(default_factory=list)


settings = Settings()
_lock = threading.Lock()
_pipeline: Pipeline | None = None


def _build_pipeline(config: Config) -> Pipeline:
    transport = None
    if config.redis_url is not None:
        from agentlog.transport import RqTransport  # rq and redis-py load only when used

        transport = RqTransport(config, settings.redis_factory(config))
    return Pipeline(
        config,
        transport=transport,
        eager=settings.eager,
        on_fallback=settings.on_fallback,
        on_enqueued=settings.on_enqueued,
    )


def pipeline(config: Config | None = None) -> Pipeline:
    """The async pipeline for the current config (created on first use)."""
    global _pipeline
    config = config or get_config()
    current = _pipeline
    if current is not None and current.config is config and current.pid == os.getpid():
        return current
    with _lock:
        if _pipeline is None or _pipeline.config is not config or _pipeline.pid != os.getpid():
            _pipeline = _build_pipeline(config)
        return _pipeline


# The current async pipeline's put, while the config and process stay the same:
# the common case skips the config lookup on the caller's thread.
_fast_put: Callable[[Execution], None] | None = None


def submit(execution: Execution) -> None:
    """Hand a finished record on. Never raises."""
    global _fast_put
    try:
        put = _fast_put
        if put is not None:
            put(execution)
            return
        config = get_config()
        if config.mode == "sync":
            writer.store([to_wire(execution, config)], config)
        else:
            current = pipeline(config)
            _fast_put = current.put
            current.put(execution)
    except Exception as exc:
        counters.incr("errors")
        counters.incr("dropped")
        logger.error("agentlog: could not log execution %s: %s", execution.id, writer.describe(exc))


def flush(timeout: float | None = None) -> bool:
    current = _pipeline
    if current is None or current.pid != os.getpid():
        return True
    return current.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    global _pipeline, _fast_put
    _fast_put = None
    with _lock:
        current, _pipeline = _pipeline, None
    if current is None or current.pid != os.getpid():
        return True
    return current.shutdown(timeout)


def reset() -> None:
    """Drop the pipeline without flushing (tests, and the child after a fork)."""
    global _pipeline, _lock, _fast_put
    _pipeline = None
    _fast_put = None
    _lock = threading.Lock()


def _on_config_change(previous: Config | None, new: Config) -> None:
    global _fast_put
    _fast_put = None
    current = _pipeline
    if current is not None and current.config is not new:
        shutdown(RECONFIGURE_TIMEOUT)


def _at_exit() -> None:
    if not shutdown(ATEXIT_TIMEOUT):
        logger.warning("agentlog: exit flush did not finish in %.0fs", ATEXIT_TIMEOUT)


on_change(_on_config_change)
# The child gets its own buffer and thread; the parent's pending records stay the parent's.
os.register_at_fork(after_in_child=reset)
atexit.register(_at_exit)


def reset_process_state(timeout: float = 2.0) -> None:
    """Back to a freshly imported library: no config, pipeline, counters or open stores.

    For test harnesses (pytest_agentlog and agentlog's own tests).
    """
    shutdown(timeout)
    config_module.reset()
    counters.reset()
    forget_spools()
    close_stores()
    settings.redis_factory = connect_redis
    settings.eager = False
    settings.on_fallback.clear()
    settings.on_enqueued.clear()
