"""initial schema: the tables, their indexes, and the functions and triggers that keep the aggregates

Squashes the eight migrations of 2026-11-26 (in git history) into one. It keeps the revision id
of the last of them, so a database already migrated that far counts as current and later
migrations chain onto it; a database migrated by the old chain and one migrated by this file
have the same schema.

The function and trigger bodies are `.sql` files next to their features, applied with
`crm.migrate.apply_sql` (whose module docstring says how a later change to one is released):
- customers/sql/search_text.sql, contacts/sql/search_text.sql, interactions/sql/search_text.sql:
  the text each trigram index is built over;
- customers/sql/segment_counts.sql: customer counts by status and type;
- interactions/sql/rollups.sql: the interaction roll-ups by day, type, user and month;
- common/sql/rebuild_aggregates.sql: the recount of both after a bulk load.

Revision ID: 7e2b9c4d1a60
Revises:
Create Date: 2026-11-26 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crm.migrate import apply_sql

revision: str = "7e2b9c4d1a60"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _entity_columns() -> list[sa.Column[object]]:
    """The id, timestamps and version every entity table ends with (crm.db.models.TimestampedVersioned)."""
    return [
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
    ]


def _customers() -> None:
    op.create_table(
        "customers",
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("company_name", sa.String(length=255), nullable=True),
        sa.Column("tax_id", sa.String(length=50), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("type", sa.String(length=16), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        *_entity_columns(),
        sa.CheckConstraint(
            "status IN ('active', 'inactive', 'lead', 'prospect', 'customer')", name=op.f("ck_customers_status")
        ),
        sa.CheckConstraint(
            "type IN ('individual', 'business', 'government', 'nonprofit')", name=op.f("ck_customers_type")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    # Every allowed sortBy walks an index in (column, id) order, for offset and cursor pages alike.
    for column in ("created_at", "updated_at", "first_name", "last_name", "email", "company_name", "status", "type"):
        op.create_index(f"ix_customers_{column}_id", "customers", [column, "id"])
    op.create_index("ix_customers_status_type_id", "customers", ["status", "type", "id"])
    op.create_index("ix_customers_owner_id", "customers", ["owner_id"])
    # Search walks each field's exact and prefix matches in index order (crm.customers.search),
    # so each searched field has a btree over its lowered value in bytewise ("C") order, where
    # `LIKE 'q%'` is a range; each name index has the other name second, which also serves
    # "first last" / "last first". Emails are unique ignoring case, in the same order.
    op.execute('CREATE UNIQUE INDEX uq_customers_email_lower ON customers (lower(email) COLLATE "C")')
    for name, definition in {
        "ix_customers_search_first_last": '(lower(first_name) COLLATE "C", lower(last_name) COLLATE "C", id)',
        "ix_customers_search_last_first": '(lower(last_name) COLLATE "C", lower(first_name) COLLATE "C", id)',
        "ix_customers_search_company": '(lower(company_name) COLLATE "C", id) WHERE company_name IS NOT NULL',
        "ix_customers_search_tax_id": '(lower(tax_id) COLLATE "C", id) WHERE tax_id IS NOT NULL',
        "ix_customers_search_phone": r"""(regexp_replace(phone, '\D', '', 'g') COLLATE "C", id) WHERE phone IS NOT NULL""",
    }.items():
        op.execute(f"CREATE INDEX {name} ON customers {definition}")
    apply_sql("crm.customers", "search_text.sql", sha256="1b3517ac83e3")
    op.execute(
        "CREATE INDEX ix_customers_search_trgm ON customers USING gin "
        "(crm_customer_search_text(first_name, last_name, email, company_name, tax_id, phone) gin_trgm_ops)"
    )


def _contacts() -> None:
    op.create_table(
        "contacts",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.String(length=100), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        *_entity_columns(),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_contacts_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index("ix_contacts_customer_id_created_at", "contacts", ["customer_id", "created_at"])
    op.create_index(
        "uq_contacts_one_primary_per_customer",
        "contacts",
        ["customer_id"],
        unique=True,
        postgresql_where=sa.text("is_primary"),
    )
    apply_sql("crm.contacts", "search_text.sql", sha256="eb0764671d6b")
    op.execute(
        "CREATE INDEX ix_contacts_search_trgm ON contacts USING gin "
        "(crm_contact_search_text(first_name, last_name, email, position, phone) gin_trgm_ops)"
    )


def _interactions() -> None:
    op.create_table(
        "interactions",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("date", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_entity_columns(),
        sa.CheckConstraint("type IN ('call', 'email', 'meeting', 'note', 'task')", name=op.f("ck_interactions_type")),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_interactions_contact_id_contacts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_interactions_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
    )
    op.create_index("ix_interactions_contact_id", "interactions", ["contact_id"])
    op.create_index("ix_interactions_user_id_date", "interactions", ["user_id", "date"])
    # Every list sort across customers walks a btree in (sort column, id) order, and a
    # customer's list in its default order, so deep pages need no sort. Within one customer
    # only the default sort: a customer's interactions are few enough to sort, and every index
    # is paid for by every write.
    for column in ("date", "created_at", "type", "subject"):
        op.create_index(f"ix_interactions_{column}_id", "interactions", [column, "id"])
    op.create_index("ix_interactions_customer_id_date_id", "interactions", ["customer_id", "date", "id"])
    apply_sql("crm.interactions", "search_text.sql", sha256="0c1c54323944")
    op.execute(
        "CREATE INDEX ix_interactions_search_trgm ON interactions USING gin "
        "(crm_interaction_search_text(subject, description) gin_trgm_ops)"
    )


def _idempotency_keys() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def _aggregates() -> None:
    """The maintained aggregates (crm.customers.aggregates, crm.interactions.aggregates) and their triggers."""
    op.create_table(
        "customer_segment_counts",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("status", "type", "slot", name=op.f("pk_customer_segment_counts")),
    )
    op.create_table(
        "interaction_daily_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "type", "user_id", name=op.f("pk_interaction_daily_counts")),
    )
    op.create_index("ix_interaction_daily_counts_user_id_day", "interaction_daily_counts", ["user_id", "day"])
    op.create_table(
        "interaction_day_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "type", name=op.f("pk_interaction_day_counts")),
    )
    op.create_table(
        "interaction_user_counts",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_interaction_user_counts")),
    )
    op.create_table(
        "interaction_day_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_interaction_day_totals")),
    )
    op.create_table(
        "interaction_type_totals",
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("type", name=op.f("pk_interaction_type_totals")),
    )
    op.create_table(
        "interaction_month_days",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("days", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_interaction_month_days")),
    )
    apply_sql("crm.customers", "segment_counts.sql", sha256="da65ab9a704a")
    apply_sql("crm.interactions", "rollups.sql", sha256="69477674c9db")
    apply_sql("crm.common", "rebuild_aggregates.sql", sha256="508d9eea3b19")
    # As the rebuild does after a bulk load: without statistics the planner assumes pages of
    # rows here and walks the primary key for the all-time statistics' month order.
    op.execute("ANALYZE interaction_month_days")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    _customers()
    _contacts()
    _interactions()
    _idempotency_keys()
    _aggregates()


def downgrade() -> None:
    for table in (
        "interaction_month_days",
        "interaction_type_totals",
        "interaction_day_totals",
        "interaction_user_counts",
        "interaction_day_counts",
        "interaction_daily_counts",
        "customer_segment_counts",
        "idempotency_keys",
        "interactions",
        "contacts",
        "customers",
    ):
        op.drop_table(table)  # with its indexes and triggers
    for function in (
        "crm_rebuild_aggregates()",
        "crm_interactions_daily_trg()",
        "crm_bump_daily(timestamptz, text, uuid, bigint)",
        "crm_lock_months(date[])",
        "crm_month_days(date)",
        "crm_customers_segments_trg()",
        "crm_bump_segment(text, text, bigint)",
        "crm_interaction_search_text(text, text)",
        "crm_contact_search_text(text, text, text, text, text)",
        "crm_customer_search_text(text, text, text, text, text, text)",
    ):
        op.execute(f"DROP FUNCTION {function}")
