from __future__ import annotations

import redis
import sqlalchemy as sa


def test_postgres_server_is_real(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        version = connection.execute(sa.text("show server_version")).scalar_one()
        tables = sa.inspect(connection).get_table_names()
    engine.dispose()
    assert version.startswith("15")
    assert "agentlog_executions" in tables


def test_redis_server_is_real(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.info("server")["redis_version"]
    assert client.ping()
