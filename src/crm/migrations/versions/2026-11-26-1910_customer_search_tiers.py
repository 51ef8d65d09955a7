"""customer search: indexes for bounded relevance tiers

Search walks each field's exact and prefix matches in index order and stops after `limit`
rows (crm.customers.search), so every searched field needs a btree over its lowered value
in bytewise ("C") order, where `LIKE 'q%'` is a range: first and last name (each with the
other name second, which also serves "first last" / "last first" queries), email (the
existing unique index, rebuilt in "C" order: same uniqueness, and it still serves exact
look-ups), company, tax id and phone digits (partial: only rows that have one). The
(last_name, first_name, id) index served only the old search order and goes.

Revision ID: b2c3d4e5f6a7
Revises: a1b2c3d4e5f6
Create Date: 2026-11-26 19:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b2c3d4e5f6a7"
down_revision: str | None = "a1b2c3d4e5f6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SEARCH_INDEXES = {
    "ix_customers_search_first_last": '(lower(first_name) COLLATE "C", lower(last_name) COLLATE "C", id)',
    "ix_customers_search_last_first": '(lower(last_name) COLLATE "C", lower(first_name) COLLATE "C", id)',
    "ix_customers_search_company": '(lower(company_name) COLLATE "C", id) WHERE company_name IS NOT NULL',
    "ix_customers_search_tax_id": '(lower(tax_id) COLLATE "C", id) WHERE tax_id IS NOT NULL',
    "ix_customers_search_phone": r"""(regexp_replace(phone, '\D', '', 'g') COLLATE "C", id) WHERE phone IS NOT NULL""",
}


def upgrade() -> None:
    for name, definition in SEARCH_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON customers {definition}")
    op.drop_index("ix_customers_last_name_first_name_id", table_name="customers")
    # Built under a new name, then swapped in: the email stays unique at every moment.
    op.execute('CREATE UNIQUE INDEX uq_customers_email_lower_c ON customers (lower(email) COLLATE "C")')
    op.drop_index("uq_customers_email_lower", table_name="customers")
    op.execute("ALTER INDEX uq_customers_email_lower_c RENAME TO uq_customers_email_lower")


def downgrade() -> None:
    op.execute("CREATE UNIQUE INDEX uq_customers_email_lower_old ON customers (lower(email))")
    op.drop_index("uq_customers_email_lower", table_name="customers")
    op.execute("ALTER INDEX uq_customers_email_lower_old RENAME TO uq_customers_email_lower")
    op.create_index("ix_customers_last_name_first_name_id", "customers", ["last_name", "first_name", "id"])
    for name in SEARCH_INDEXES:
        op.drop_index(name, table_name="customers")
