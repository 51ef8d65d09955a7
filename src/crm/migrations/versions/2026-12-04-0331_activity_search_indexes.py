"""contacts and interactions search: indexes for bounded relevance tiers

Search finds each tier on its own (crm.common.tiers): exact and prefix matches from a btree
per searched field over its lowered value in bytewise ("C") order, where the values equal to
the query or starting with it are a range (for contacts, as for customers, the two names each
with the other second, which also serves "first last" / "last first" queries); substring
matches by walking the tier's order: newest first, which for contacts needs a (created_at, id)
index (interactions walk the existing (date, id) index backwards). Interactions' description is indexed by its first
200 characters: a query is at most 200, so that prefix decides "equals" and "starts with",
and a long text would not fit a btree entry.

Revision ID: 4f1d2a9c7e35
Revises: 4f8a2c6e9b13
Create Date: 2026-12-04 03:31:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4f1d2a9c7e35"
down_revision: str | None = "4f8a2c6e9b13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "contacts": {
        "ix_contacts_created_at_id": "(created_at, id)",
        "ix_contacts_search_first_last": '(lower(first_name) COLLATE "C", lower(last_name) COLLATE "C", id)',
        "ix_contacts_search_last_first": '(lower(last_name) COLLATE "C", lower(first_name) COLLATE "C", id)',
        "ix_contacts_search_email": '(lower(email) COLLATE "C", id) WHERE email IS NOT NULL',
        "ix_contacts_search_position": '(lower(position) COLLATE "C", id) WHERE position IS NOT NULL',
        "ix_contacts_search_phone": r"""(regexp_replace(phone, '\D', '', 'g') COLLATE "C", id) WHERE phone IS NOT NULL""",
    },
    "interactions": {
        "ix_interactions_search_subject": '(lower(subject) COLLATE "C", id)',
        "ix_interactions_search_description": (
            '(left(lower(description), 200) COLLATE "C", id) WHERE description IS NOT NULL'
        ),
    },
}


def upgrade() -> None:
    for table, indexes in INDEXES.items():
        for name, definition in indexes.items():
            op.execute(f"CREATE INDEX {name} ON {table} {definition}")


def downgrade() -> None:
    for table, indexes in INDEXES.items():
        for name in indexes:
            op.drop_index(name, table_name=table)
