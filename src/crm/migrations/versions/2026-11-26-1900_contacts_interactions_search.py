"""contact and interaction search by trigram index; interaction list indexes for keyset pages

As for customers (2026-11-26-1630): one IMMUTABLE function per table builds the lowered text
a row is searched by, and a GIN trigram index over it finds the candidates of `LIKE '%q%'`
and of typo-tolerant word similarity; the service still decides with the exact per-field
conditions. Every interaction list sort across customers walks a btree in (sort column, id)
order, and a customer's list in its default order, so deep pages need no sort.

Revision ID: a1b2c3d4e5f6
Revises: 7c3e9b1a4d2f
Create Date: 2026-11-26 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a1b2c3d4e5f6"
down_revision: str | None = "7c3e9b1a4d2f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# chr(31) (unit separator) between fields: a query never spans two fields by accident.
# Names in both orders, so "first last" and "last first" are substrings of the document.
CONTACT_SEARCH_TEXT = r"""
CREATE FUNCTION crm_contact_search_text(
    first_name text, last_name text, email text, job_title text, phone text
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(first_name || ' ' || last_name || ' ' || first_name || chr(31) || coalesce(email, '')
                 || chr(31) || coalesce(job_title, ''))
           || chr(31) || regexp_replace(coalesce(phone, ''), '\D', '', 'g')
$$
"""

INTERACTION_SEARCH_TEXT = r"""
CREATE FUNCTION crm_interaction_search_text(subject text, description text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(subject || chr(31) || coalesce(description, ''))
$$
"""

SORT_COLUMNS = ("date", "created_at", "type", "subject")


def upgrade() -> None:
    op.execute(CONTACT_SEARCH_TEXT)
    op.execute(
        "CREATE INDEX ix_contacts_search_trgm ON contacts USING gin "
        "(crm_contact_search_text(first_name, last_name, email, position, phone) gin_trgm_ops)"
    )
    op.execute(INTERACTION_SEARCH_TEXT)
    op.execute(
        "CREATE INDEX ix_interactions_search_trgm ON interactions USING gin "
        "(crm_interaction_search_text(subject, description) gin_trgm_ops)"
    )
    # (date, id) and (customer_id, date, id) replace (date) and (customer_id, date): same look-ups, plus the order.
    op.drop_index("ix_interactions_customer_id_date", table_name="interactions")
    op.drop_index("ix_interactions_date", table_name="interactions")
    for column in SORT_COLUMNS:
        op.create_index(f"ix_interactions_{column}_id", "interactions", [column, "id"])
    # Within one customer only the default sort: a customer's interactions are few enough to
    # sort, and every index is paid for by every write.
    op.create_index("ix_interactions_customer_id_date_id", "interactions", ["customer_id", "date", "id"])


def downgrade() -> None:
    op.drop_index("ix_interactions_customer_id_date_id", table_name="interactions")
    for column in SORT_COLUMNS:
        op.drop_index(f"ix_interactions_{column}_id", table_name="interactions")
    op.create_index("ix_interactions_date", "interactions", ["date"])
    op.create_index("ix_interactions_customer_id_date", "interactions", ["customer_id", "date"])
    op.execute("DROP INDEX ix_interactions_search_trgm")
    op.execute("DROP FUNCTION crm_interaction_search_text(text, text)")
    op.execute("DROP INDEX ix_contacts_search_trgm")
    op.execute("DROP FUNCTION crm_contact_search_text(text, text, text, text, text)")
