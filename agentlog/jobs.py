"""The rq job and the serializer its payloads cross Redis with."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from agentlog import counters
from agentlog.config import get_config
from agentlog.serialize import Wire
from agentlog.store import get_store

logger = logging.getLogger("agentlog")

FUNC_NAME = "agentlog.jobs.log_executions"


class JSONSerializer:
    """rq serializer: JSON through orjson, never pickle.

    Whoever can write to Redis must not be able to run code in the worker, and
    orjson encodes a 100-record batch several times faster than ``json``.
    Workers must use it too: ``rq worker --serializer agentlog.jobs.JSONSerializer``
    (``agentlog worker`` does).
    """

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    @staticmethod
    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)


def log_executions(batch: list[Wire]) -> int:
    """Insert a batch of serialized executions, idempotently. Returns the new rows.

    A database error propagates so that rq retries the job (``Config.retry``)
    and, after the last attempt, keeps it in the ``FailedJobRegistry``.
    """
    if not isinstance(batch, list):
        raise TypeError(f"log_executions expects a list of executions, got {type(batch).__name__}")
    inserted = get_store(get_config().database_url).insert_many(batch)
    counters.incr("logged", inserted)
    logger.debug("agentlog: job stored %d of %d executions", inserted, len(batch))
    return inserted


def prepare_worker() -> None:
    """Open the store and check its schema once, in the worker's main process.

    A forking rq worker runs each job in a child that inherits this, instead
    of opening a database and checking the schema again for every job.
    """
    get_store(get_config().database_url).prepare()
