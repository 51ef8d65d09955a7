"""customer list and typo search at a million customers: covering sort indexes, owner order, names

- Every list sort index `(column, id)` also carries the filter columns (status, type,
  owner_id) as INCLUDE columns, so a filtered page walks the index alone (an index-only scan
  that skips non-matching entries) instead of fetching each skipped row from the table.
- The owner filter gets `(owner_id, created_at, id)` with status and type included: the
  default order of one owner's customers is an index range, and its total an index-only count.
  It replaces `(owner_id)`; `(status, type, id)` goes (the totals come from the counters).
- `customer_words`: the distinct lowered words of customers' names, emails and company names,
  with a trigram index, kept by a trigger (crm/customers/sql/customer_words.sql). The
  typo-tolerant search finds the words similar to a query there (a few hundred rows, not a
  million documents), then searches for them literally, through the bounded tiers.

Revision ID: 4f8a2c6e9b13
Revises: 7e2b9c4d1a60
Create Date: 2026-12-04 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm.migrate import apply_sql

revision: str = "4f8a2c6e9b13"
down_revision: str | None = "7e2b9c4d1a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SORT_COLUMNS = ("created_at", "updated_at", "first_name", "last_name", "email", "company_name", "status", "type")
FILTERS = ("status", "type", "owner_id")


def _covering(column: str) -> str:
    included = ", ".join(f for f in FILTERS if f != column)
    return f"({column}, id) INCLUDE ({included})"


def _replace_index(name: str, definition: str) -> None:
    """Build the new definition beside the old index, then swap the names (no moment without one)."""
    op.execute(f"CREATE INDEX {name}_new ON customers {definition}")
    op.execute(f"DROP INDEX {name}")
    op.execute(f"ALTER INDEX {name}_new RENAME TO {name}")


def upgrade() -> None:
    for column in SORT_COLUMNS:
        _replace_index(f"ix_customers_{column}_id", _covering(column))
    op.execute(
        "CREATE INDEX ix_customers_owner_id_created_at_id ON customers (owner_id, created_at, id) INCLUDE (status, type)"
    )
    op.drop_index("ix_customers_owner_id", table_name="customers")
    op.drop_index("ix_customers_status_type_id", table_name="customers")

    op.create_table(
        "customer_words",
        sa.Column("word", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("word", name=op.f("pk_customer_words")),
    )
    op.execute("CREATE INDEX ix_customer_words_trgm ON customer_words USING gin (word gin_trgm_ops)")
    apply_sql("crm.customers", "customer_words.sql", sha256="fafcae67cdb3")
    # Existing customers' words (an upgrade of a live database), once, here.
    op.execute("SELECT crm_rebuild_customer_words()")


def downgrade() -> None:
    op.execute("DROP TRIGGER customers_words_update ON customers")
    op.execute("DROP TRIGGER customers_words ON customers")
    op.execute("DROP FUNCTION crm_rebuild_customer_words()")
    op.execute("DROP FUNCTION crm_customer_words_trg()")
    op.execute("DROP FUNCTION crm_customer_words(text, text, text, text)")
    op.drop_table("customer_words")
    op.create_index("ix_customers_status_type_id", "customers", ["status", "type", "id"])
    op.create_index("ix_customers_owner_id", "customers", ["owner_id"])
    op.drop_index("ix_customers_owner_id_created_at_id", table_name="customers")
    for column in SORT_COLUMNS:
        _replace_index(f"ix_customers_{column}_id", f"({column}, id)")
