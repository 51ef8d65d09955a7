"""customer search by trigram index, and btree indexes for every list sort

One IMMUTABLE function builds the text a customer is searched by (names in both orders,
email, company, tax id, phone digits); a GIN trigram index over it lets `LIKE '%q%'`
and typo-tolerant word similarity find candidates without scanning the table. The
service still applies the exact per-field conditions on the candidates, so the index
changes speed, not results.

Revision ID: 7c3e9b1a4d2f
Revises: 5a1f0c2d9e7b
Create Date: 2026-11-26 16:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7c3e9b1a4d2f"
down_revision: str | None = "5a1f0c2d9e7b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# chr(31) (unit separator) between fields: a query never spans two fields by accident.
SEARCH_TEXT = r"""
CREATE FUNCTION crm_customer_search_text(
    first_name text, last_name text, email text, company_name text, tax_id text, phone text
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(first_name || ' ' || last_name || ' ' || first_name || chr(31) || coalesce(email, '')
                 || chr(31) || coalesce(company_name, '') || chr(31) || coalesce(tax_id, ''))
           || chr(31) || regexp_replace(coalesce(phone, ''), '\D', '', 'g')
$$
"""

SORT_COLUMNS = ("updated_at", "first_name", "last_name", "email", "company_name", "status", "type")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(SEARCH_TEXT)
    op.execute(
        "CREATE INDEX ix_customers_search_trgm ON customers USING gin "
        "(crm_customer_search_text(first_name, last_name, email, company_name, tax_id, phone) gin_trgm_ops)"
    )
    # Every allowed sortBy walks an index in (column, id) order, for offset and cursor pages alike.
    for column in SORT_COLUMNS:
        op.create_index(f"ix_customers_{column}_id", "customers", [column, "id"])
    # Searches within a relevance tier are ordered by name.
    op.create_index("ix_customers_last_name_first_name_id", "customers", ["last_name", "first_name", "id"])
    op.drop_index("ix_customers_status_type", table_name="customers")
    op.create_index("ix_customers_status_type_id", "customers", ["status", "type", "id"])


def downgrade() -> None:
    op.drop_index("ix_customers_status_type_id", table_name="customers")
    op.create_index("ix_customers_status_type", "customers", ["status", "type"])
    op.drop_index("ix_customers_last_name_first_name_id", table_name="customers")
    for column in SORT_COLUMNS:
        op.drop_index(f"ix_customers_{column}_id", table_name="customers")
    op.execute("DROP INDEX ix_customers_search_trgm")
    op.execute("DROP FUNCTION crm_customer_search_text(text, text, text, text, text, text)")
