"""events outbox: one CloudEvent per committed change, and each customer's last event number

Written by crm.events.outbox in the transaction of each change (every history entry is also
an event, with the same id); published by the relay. No foreign keys: an event outlives its
record (trash, purge, erasure) until the retention purge takes it.

Revision ID: 8e0a5c3b7d21
Revises: 7c3e91d0a4b2
Create Date: 2026-12-04 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "8e0a5c3b7d21"
down_revision: str | None = "7c3e91d0a4b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), server_default=sa.func.clock_timestamp(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feed_position", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("position", name="pk_events"),
        sa.UniqueConstraint("id", name="uq_events_id"),
        sa.UniqueConstraint("feed_position", name="uq_events_feed_position"),
    )
    op.create_index("uq_events_customer_id_sequence", "events", ["customer_id", "sequence"], unique=True)
    op.create_index("ix_events_unpublished", "events", ["position"], postgresql_where=sa.text("published_at IS NULL"))
    op.create_index(
        "ix_events_published_at", "events", ["published_at"], postgresql_where=sa.text("published_at IS NOT NULL")
    )
    op.create_table(
        "event_sequences",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_event_sequences"),
    )


def downgrade() -> None:
    op.drop_table("event_sequences")
    op.drop_table("events")
