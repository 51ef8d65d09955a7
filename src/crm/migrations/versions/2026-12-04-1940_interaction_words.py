"""interaction words: the typo-tolerant search's check that a query resembles any known word

A word no interaction holds ran the typo pass's trigram search over every interaction's text
(0.4 s p99 at 5M, on its time budget); crm.common.tiers now asks this small table first.
Kept by a trigger (interactions/sql/words.sql), filled here for the rows already there.

Revision ID: 9a2c7e1f4b36
Revises: 8f4b1d6e2a90
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm.migrate import apply_sql

revision: str = "9a2c7e1f4b36"
down_revision: str | None = "8f4b1d6e2a90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interaction_words",
        sa.Column("word", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("word", name=op.f("pk_interaction_words")),
    )
    op.execute("CREATE INDEX ix_interaction_words_trgm ON interaction_words USING gin (word gin_trgm_ops)")
    apply_sql("crm.interactions", "words.sql", sha256="e130c3a103b6")
    op.execute("SELECT crm_rebuild_interaction_words()")


def downgrade() -> None:
    op.execute("DROP TRIGGER interactions_words_update ON interactions")
    op.execute("DROP TRIGGER interactions_words ON interactions")
    op.execute("DROP FUNCTION crm_rebuild_interaction_words()")
    op.execute("DROP FUNCTION crm_interaction_words_trg()")
    op.execute("DROP FUNCTION crm_interaction_words(text, text)")
    op.drop_table("interaction_words")
