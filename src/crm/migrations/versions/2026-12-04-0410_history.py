"""history: one append-only entry per change of a customer, contact or interaction

Written by the services in the transaction of the change (crm.history.service). No foreign
keys, so entries outlive purged and erased records. Read by customer and by user, newest
first, with a keyset cursor on (at, id): one index for each of those walks, one for one action
(the rare ones: deletes, restores, erasures) and one for all.

Revision ID: 7b2e9d41c0a8
Revises: 4f1d2a9c7e35
Create Date: 2026-12-04 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7b2e9d41c0a8"
down_revision: str | None = "4f1d2a9c7e35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "history",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("changes", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.CheckConstraint("entity IN ('customer', 'contact', 'interaction')", name=op.f("ck_history_entity")),
        sa.CheckConstraint(
            "action IN ('created', 'updated', 'deleted', 'restored', 'erased')", name=op.f("ck_history_action")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history")),
    )
    op.create_index("ix_history_customer_id_at_id", "history", ["customer_id", "at", "id"])
    op.create_index("ix_history_actor_user_id_at_id", "history", ["actor_user_id", "at", "id"])
    op.create_index("ix_history_at_id", "history", ["at", "id"])
    op.create_index("ix_history_action_at_id", "history", ["action", "at", "id"])


def downgrade() -> None:
    op.drop_table("history")
