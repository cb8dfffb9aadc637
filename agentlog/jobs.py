"""The rq job and the serializer its payloads cross Redis with."""

from __future__ import annotations

import logging
import zlib
from typing import Any

import orjson
from rq.job import Job

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


class BatchJob(Job):
    """An rq ``Job`` whose payload is compressed at zlib level 1 instead of 6.

    rq compresses every job's data at zlib's default level: for a batch of 500
    executions (~0.9 MB of JSON) that was ~6 ms, most of the cost of enqueueing
    it, on the application's flusher thread. Level 1 takes about a third of
    that for a somewhat larger payload. Any rq worker reads it (decompression
    does not depend on the level), so this matters only where jobs are made.
    """

    def to_dict(self, include_meta: bool = True, include_result: bool = True) -> dict[str, Any]:
        data = self.data
        # rq's to_dict compresses self.data at level 6: hand it an empty payload,
        # then put the real one in, compressed once.
        self._data = b""
        try:
            mapping = super().to_dict(include_meta=include_meta, include_result=include_result)
        finally:
            self._data = data
        mapping["data"] = zlib.compress(data, 1)
        return mapping


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
