"""The Redis client agentlog enqueues through.

redis-py takes ~0.17 s to import; an application without ``redis_url`` never
pays it, so it is imported when the first client is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agentlog.config import Config

if TYPE_CHECKING:
    import redis

RedisFactory = Callable[[Config], "redis.Redis"]


def connect_redis(config: Config) -> redis.Redis:
    """A client that fails in ``redis_timeout`` seconds instead of retrying for seconds."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    assert config.redis_url is not None
    return redis.Redis.from_url(
        config.redis_url,
        socket_connect_timeout=config.redis_timeout,
        socket_timeout=config.redis_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
