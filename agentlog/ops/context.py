"""What every command needs: a config from its options, connections, one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import sqlalchemy.exc
from rq import Queue
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from agentlog.config import Config, build_config
from agentlog.schema import TABLE_NAME
from agentlog.spool import Spool, get_spool
from agentlog.store import SchemaMissing, Store, get_store
from agentlog.transport import connect_redis, make_queue
from agentlog.writer import describe

# Operators' commands may read many jobs over a network: more patience than the hot path's 0.2 s.
OPS_REDIS_TIMEOUT = 3.0


class OpsError(Exception):
    """A failure reported as one line, without a traceback (unreachable server, bad option)."""


def safe_url(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``."""
    if "://" not in url:
        return url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        try:
            return make_url(url).render_as_string(hide_password=True)
        except (sqlalchemy.exc.ArgumentError, ValueError):
            pass
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def build_ops_config(
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    queue: str | None = None,
    spool_dir: Path | None = None,
    **extra: Any,
) -> Config:
    """A ``Config`` from command options; what is not given comes from env vars and defaults."""
    options: dict[str, Any] = {"redis_timeout": OPS_REDIS_TIMEOUT, **extra}
    for name, value in (
        ("database_url", database_url),
        ("redis_url", redis_url),
        ("queue_name", queue),
        ("spool_dir", spool_dir),
    ):
        if value is not None:
            options[name] = value
    try:
        return build_config(**options)
    except (ValueError, TypeError) as exc:
        raise OpsError(str(exc).removeprefix("agentlog: ")) from None


def redis_unreachable(url: str, exc: BaseException) -> OpsError:
    return OpsError(
        f"cannot reach Redis at {safe_url(url)} ({describe(exc)}); is redis-server running "
        "there? (--redis-url / AGENTLOG_REDIS_URL)"
    )


def database_unreachable(url: str, exc: BaseException) -> OpsError:
    return OpsError(
        f"cannot reach the database at {safe_url(url)} ({describe(exc)}); is it running and "
        "is the URL right? (--database-url / AGENTLOG_DATABASE_URL)"
    )


class Ops:
    """Lazily opened connections for one command run."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def has_redis(self) -> bool:
        return self.config.redis_url is not None

    def require_redis_url(self) -> str:
        if self.config.redis_url is None:
            raise OpsError(
                "no Redis configured: pass --redis-url or set AGENTLOG_REDIS_URL "
                "(without Redis, async mode writes from an in-process thread and there is no queue)"
            )
        return self.config.redis_url

    @functools.cached_property
    def redis(self) -> redis.Redis:
        """A client that answered PING; ``OpsError`` when Redis is unreachable."""
        url = self.require_redis_url()
        client = connect_redis(self.config)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise redis_unreachable(url, exc) from None
        return client

    @functools.cached_property
    def queue(self) -> Queue:
        return make_queue(self.config, self.redis)

    @property
    def store(self) -> Store:
        return get_store(self.config.database_url)

    @property
    def spool(self) -> Spool:
        return get_spool(self.config.spool_dir, self.config.spool_max_bytes)

    def require_schema(self) -> Store:
        """The store, once its table is known to exist (reads must not create it)."""
        from agentlog.ops.database import sqlite_file_missing

        store = self.store
        missing = sqlite_file_missing(store)
        if missing is not None:
            raise OpsError(f"{missing} does not exist: nothing to read")
        with self.errors():
            if not inspect(store.engine).has_table(TABLE_NAME):
                raise OpsError(
                    f"table {TABLE_NAME} does not exist in {safe_url(self.config.database_url)}: "
                    "run `agentlog migrate`"
                )
        return store

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn Redis and database failures inside the block into one-line ``OpsError``."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise redis_unreachable(self.config.redis_url or "?", exc) from None
        except redis.RedisError as exc:
            raise OpsError(f"Redis error: {describe(exc)}") from None
        except SchemaMissing as exc:
            raise OpsError(str(exc)) from None
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            raise database_unreachable(self.config.database_url, exc) from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise OpsError(
                f"database error at {safe_url(self.config.database_url)}: {describe(exc)}"
            ) from None
