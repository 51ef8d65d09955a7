"""order projection: each Order Service order's latest state seen, and each customer's figures

Filled by the order events consumer and `crm orders sync` (crm.orders.projection.service).
No foreign key to customers: events may name a customer the CRM has not got (yet, or any
more), and the figures must be right once it has.

Revision ID: 7c3e91d0a4b2
Revises: 7c2e5b9a1d40
Create Date: 2026-12-04 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3e91d0a4b2"
down_revision: str | None = "7c2e5b9a1d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_projections",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("total_amount", sa.Numeric(precision=12, scale=2), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_order_projections"),
    )
    op.create_index("ix_order_projections_customer_id", "order_projections", ["customer_id"])
    op.create_index(
        "ix_order_projections_customer_counted",
        "order_projections",
        ["customer_id"],
        postgresql_include=["total_amount", "created_at"],
        postgresql_where=sa.text("NOT deleted AND status NOT IN ('cancelled', 'returned')"),
    )
    op.create_table(
        "customer_order_figures",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("total_orders", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_spent", sa.Numeric(precision=14, scale=2), server_default="0", nullable=False),
        sa.Column("first_order_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_order_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("orders_synced_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_order_figures"),
    )


def downgrade() -> None:
    op.drop_table("customer_order_figures")
    op.drop_table("order_projections")
