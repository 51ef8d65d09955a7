"""order figures on every customer: a figures row per customer, sort indexes for the list

- `customer_order_figures` gets a row for every customer (kept by a trigger on customers,
  crm/orders/sql/customer_figures.sql; existing customers backfilled here), so the list can
  sort by total_spent / total_orders / last_order_date with one walk of a figures index and
  filter by them without an outer join: a customer without orders has 0, 0.00 and no dates.
- `orders_synced_at` becomes NULL for "never synced" (the rows made for customers here and by
  the trigger); rows the projection wrote keep their time.
- Indexes `(column, customer_id)` for the three sorts; `last_order_date` NULLS FIRST, so
  ascending starts with the customers who never ordered (longest since an order) and
  descending (most recent first) ends with them.

Why a table of its own rather than columns on customers: the figures change with every order
event (thousands a second at the issue's target); a customers row carries ~15 indexes (one
GIN), every update of it would write all of them and clear the visibility-map bits that the
list's index-only walks rely on. The figures table has four narrow indexes.

Revision ID: 8d4f02a7c1e5
Revises: 5d2f8a1c9e47
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm.migrate import apply_sql

revision: str = "8d4f02a7c1e5"
down_revision: str | None = "5d2f8a1c9e47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("customer_order_figures", "orders_synced_at", nullable=True, server_default=None)
    op.execute(
        "INSERT INTO customer_order_figures (customer_id, orders_synced_at) "
        "SELECT id, NULL FROM customers ON CONFLICT (customer_id) DO NOTHING"
    )
    op.create_index("ix_customer_order_figures_total_spent", "customer_order_figures", ["total_spent", "customer_id"])
    op.create_index("ix_customer_order_figures_total_orders", "customer_order_figures", ["total_orders", "customer_id"])
    op.create_index(
        "ix_customer_order_figures_last_order_date",
        "customer_order_figures",
        [sa.text("last_order_date NULLS FIRST"), "customer_id"],
    )
    # A customer's filterable figures by its id from the index alone: a figure filter beside
    # another sort probes it for each customer walked, and its capped count merges it with the
    # customers' primary key, without visiting the table.
    op.execute(
        "CREATE INDEX ix_customer_order_figures_filters ON customer_order_figures (customer_id)"
        " INCLUDE (total_orders, total_spent, last_order_date)"
    )
    # Reads of this table are short walks of its indexes: a generic plan, pricing an unknown
    # range as a third of the rows, started two parallel workers for them (10-20 ms of start-up
    # on a busy machine for a statement of a fraction of a millisecond).
    op.execute("ALTER TABLE customer_order_figures SET (parallel_workers = 0)")
    apply_sql("crm.orders", "customer_figures.sql", sha256="765444a7a8ad")


def downgrade() -> None:
    op.execute("ALTER TABLE customer_order_figures RESET (parallel_workers)")
    op.execute("DROP TRIGGER customers_order_figures_row ON customers")
    op.execute("DROP FUNCTION crm_customer_figures_row_trg()")
    op.drop_index("ix_customer_order_figures_filters", table_name="customer_order_figures")
    op.drop_index("ix_customer_order_figures_last_order_date", table_name="customer_order_figures")
    op.drop_index("ix_customer_order_figures_total_orders", table_name="customer_order_figures")
    op.drop_index("ix_customer_order_figures_total_spent", table_name="customer_order_figures")
    op.execute("DELETE FROM customer_order_figures WHERE orders_synced_at IS NULL")
    op.alter_column("customer_order_figures", "orders_synced_at", nullable=False, server_default=sa.func.now())
