"""The ``agentlog_executions`` table.

``metadata`` is exported so applications can include the table in their own
Alembic autogenerate runs (``target_metadata = [app_metadata, agentlog.schema.metadata]``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

TABLE_NAME = "agentlog_executions"
VERSION_TABLE = "agentlog_alembic_version"

metadata = MetaData()

# JSONB on PostgreSQL (indexable, compact); JSON (text) on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
# Exact money on PostgreSQL; SQLite has no decimal type, so a float there.
MONEY_PRECISION, MONEY_SCALE = 20, 10
Money = Numeric(MONEY_PRECISION, MONEY_SCALE).with_variant(Float(), "sqlite")

executions = Table(
    TABLE_NAME,
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("agent", String(255), nullable=False),
    Column("model", String(255)),
    Column("provider", String(64)),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    Column("duration_ms", Float),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("total_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("input_cost", Money),
    Column("output_cost", Money),
    Column("total_cost", Money),
    Column("finish_reason", String(64)),
    Column("error_class", String(255)),
    Column("error_message", Text),
    Column("parameters", Json),
    Column("system_prompt", Text),
    Column("prompt", Json),
    Column("response", Json),
    Column("tool_calls", Json),
    Column("metadata", Json),
    Column("trace_id", String(255)),
    Column("request_id", String(255)),
    Column("parent_id", Uuid),
    Column("tenant_id", String(255)),
    Column("logged_at", DateTime(timezone=True), server_default=func.current_timestamp()),
    Index("ix_agentlog_executions_agent_started_at", "agent", "started_at"),
    Index("ix_agentlog_executions_status_started_at", "status", "started_at"),
    Index("ix_agentlog_executions_model_status", "model", "status"),
    Index("ix_agentlog_executions_started_at", "started_at"),
    Index("ix_agentlog_executions_trace_id", "trace_id"),
    Index("ix_agentlog_executions_request_id", "request_id"),
    Index("ix_agentlog_executions_tenant_id", "tenant_id"),
    Index("ix_agentlog_executions_parent_id", "parent_id"),
)
