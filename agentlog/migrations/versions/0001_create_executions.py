"""Create agentlog_executions.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Money = sa.Numeric(20, 10).with_variant(sa.Float(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agentlog_executions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255)),
        sa.Column("provider", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("duration_ms", sa.Float()),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("total_tokens", sa.Integer()),
        sa.Column("cached_tokens", sa.Integer()),
        sa.Column("input_cost", Money),
        sa.Column("output_cost", Money),
        sa.Column("total_cost", Money),
        sa.Column("finish_reason", sa.String(64)),
        sa.Column("error_class", sa.String(255)),
        sa.Column("error_message", sa.Text()),
        sa.Column("parameters", Json),
        sa.Column("system_prompt", sa.Text()),
        sa.Column("prompt", Json),
        sa.Column("response", Json),
        sa.Column("tool_calls", Json),
        sa.Column("metadata", Json),
        sa.Column("trace_id", sa.String(255)),
        sa.Column("request_id", sa.String(255)),
        sa.Column("parent_id", sa.Uuid()),
        sa.Column("tenant_id", sa.String(255)),
        sa.Column(
            "logged_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
        ),
    )
    for name, columns in (
        ("agent_started_at", ["agent", "started_at"]),
        ("status_started_at", ["status", "started_at"]),
        ("model_status", ["model", "status"]),
        ("started_at", ["started_at"]),
        ("trace_id", ["trace_id"]),
        ("request_id", ["request_id"]),
        ("tenant_id", ["tenant_id"]),
        ("parent_id", ["parent_id"]),
    ):
        op.create_index(f"ix_agentlog_executions_{name}", "agentlog_executions", columns)


def downgrade() -> None:
    op.drop_table("agentlog_executions")
