"""trash and erasure: the trash table deletes move rows to, and the ids erasure removed

`trash` holds each deleted customer, contact and interaction as it was (to_jsonb of the row),
until a restore moves it back or the purge removes it (crm.trash). `erased_ids` holds the ids
of erased records, so every endpoint answers 410 for them (crm.erasure). Neither has foreign
keys: a trashed row's customer may be trashed or gone, and an erased id names nothing.

Revision ID: 9d4a7e2c6b18
Revises: 9a2c7e1f4b36
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "9d4a7e2c6b18"
down_revision: str | None = "9a2c7e1f4b36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trash",
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("deletion_id", sa.Uuid(), nullable=False),
        sa.Column("head", sa.Boolean(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("record", postgresql.JSONB(), nullable=False),
        sa.Column("unlinked", postgresql.ARRAY(sa.Uuid()), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("entity", "id", name=op.f("pk_trash")),
    )
    op.create_index("ix_trash_deleted_at_id", "trash", ["deleted_at", "id"], postgresql_where=sa.text("head"))
    op.create_index(
        "ix_trash_entity_deleted_at_id", "trash", ["entity", "deleted_at", "id"], postgresql_where=sa.text("head")
    )
    op.create_index(
        "ix_trash_author_id_deleted_at_id",
        "trash",
        ["author_id", "deleted_at", "id"],
        postgresql_where=sa.text("head AND author_id IS NOT NULL"),
    )
    op.create_index("ix_trash_deletion_id", "trash", ["deletion_id"])
    op.create_index("ix_trash_customer_id", "trash", ["customer_id"])
    op.create_table(
        "erased_ids",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erased_ids")),
    )


def downgrade() -> None:
    op.drop_table("erased_ids")
    op.drop_table("trash")
